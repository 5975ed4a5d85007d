"""A real Modbus/TCP client (pymodbus) for jitgate-gateway's integration tests.

usage: modbus_peer.py PORT SCENARIO

Prints one JSON object with what the device answered; the Rust test checks it against the
simulated PLC's memory. Exit code 2 means pymodbus is not installed (the test then skips
loudly, or fails when JITGATE_REQUIRE_PEERS=1).
"""

import inspect
import json
import sys

try:
    from pymodbus.client import ModbusTcpClient
except ImportError:
    print("pymodbus is not installed: pip install pymodbus", file=sys.stderr)
    sys.exit(2)

# pymodbus renamed `slave=` to `device_id=` in 3.10; accept either so a CI image with a
# different release still runs the test instead of failing on a keyword.
UNIT_KW = (
    "device_id"
    if "device_id" in inspect.signature(ModbusTcpClient.read_coils).parameters
    else "slave"
)


def unit(n):
    return {UNIT_KW: n}


def outcome(rr, field):
    if rr.isError():
        return {"exception": getattr(rr, "exception_code", None), "text": str(rr)}
    return {"ok": list(getattr(rr, field)) if field else True}


def direct(c):
    """Read and write every table on unit 1 of the simulated PLC."""
    out = {}
    out["read_holding_0_4"] = outcome(c.read_holding_registers(0, count=5, **unit(1)), "registers")
    out["write_register_10"] = outcome(c.write_register(10, 1234, **unit(1)), None)
    out["write_registers_20"] = outcome(c.write_registers(20, [1, 2, 65535], **unit(1)), None)
    out["read_holding_10_12"] = outcome(c.read_holding_registers(10, count=3, **unit(1)), "registers")
    out["read_holding_20_22"] = outcome(c.read_holding_registers(20, count=3, **unit(1)), "registers")
    out["write_coil_5"] = outcome(c.write_coil(5, True, **unit(1)), None)
    out["write_coils_30"] = outcome(c.write_coils(30, [True, False, True], **unit(1)), None)
    out["read_coils_0_7"] = outcome(c.read_coils(0, count=8, **unit(1)), "bits")
    out["read_coils_30_32"] = outcome(c.read_coils(30, count=3, **unit(1)), "bits")
    out["read_input_7"] = outcome(c.read_input_registers(7, count=1, **unit(1)), "registers")
    out["read_discrete_3"] = outcome(c.read_discrete_inputs(3, count=1, **unit(1)), "bits")
    out["readwrite_40"] = outcome(
        c.readwrite_registers(read_address=40, read_count=2, write_address=41, values=[77], **unit(1)),
        "registers",
    )
    out["read_unit_9"] = outcome(c.read_holding_registers(0, count=1, **unit(9)), "registers")
    return out


def gateway(c):
    """Through an inspecting relay whose grant is `read holding 0-9, write coil 10-20` on unit 1."""
    out = {}
    out["allowed_read"] = outcome(c.read_holding_registers(0, count=10, **unit(1)), "registers")
    out["read_past_scope"] = outcome(c.read_holding_registers(5, count=10, **unit(1)), "registers")
    out["write_on_read_grant"] = outcome(c.write_register(3, 999, **unit(1)), None)
    out["allowed_coil_write"] = outcome(c.write_coils(10, [True] * 11, **unit(1)), None)
    out["coil_write_past_scope"] = outcome(c.write_coil(21, True, **unit(1)), None)
    out["diagnostics"] = outcome(c.diag_read_diagnostic_register(**unit(1)), None)
    out["other_unit"] = outcome(c.read_holding_registers(0, count=1, **unit(2)), "registers")
    out["read_after_denials"] = outcome(c.read_holding_registers(3, count=1, **unit(1)), "registers")
    return out


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=0)
    if not c.connect():
        print(f"cannot connect to 127.0.0.1:{port}", file=sys.stderr)
        sys.exit(1)
    try:
        result = {"direct": direct, "gateway": gateway}[scenario](c)
    finally:
        c.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
