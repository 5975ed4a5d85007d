"""A real Modbus/TCP client (pymodbus) used through `jitgate connect` in end-to-end tests.

usage: grant_client.py PORT SCENARIO

Prints one JSON object with what came back. Exit code 2: pymodbus is not installed.
"""

import inspect
import json
import sys
import time

try:
    from pymodbus.client import ModbusTcpClient
except ImportError:
    print("pymodbus is not installed: pip install pymodbus", file=sys.stderr)
    sys.exit(2)

UNIT_KW = (
    "device_id"
    if "device_id" in inspect.signature(ModbusTcpClient.read_coils).parameters
    else "slave"
)


def unit(n):
    return {UNIT_KW: n}


def outcome(rr, field):
    if rr.isError():
        return {"exception": getattr(rr, "exception_code", None)}
    return {"ok": list(getattr(rr, field)) if field else True}


def in_scope(c):
    return {
        "read_holding_0_9": outcome(c.read_holding_registers(0, count=10, **unit(1)), "registers"),
        "write_register_5": outcome(c.write_register(5, 4242, **unit(1)), None),
        "read_holding_95_104": outcome(c.read_holding_registers(95, count=10, **unit(1)), "registers"),
        "read_coils_0": outcome(c.read_coils(0, count=1, **unit(1)), "bits"),
        "read_holding_90_99": outcome(c.read_holding_registers(90, count=10, **unit(1)), "registers"),
    }


READING_AFTER = 3


def hold(c):
    """Read every 100 ms until the connection is cut; report how long it lasted.

    Prints `reading` on a line of its own after the third read, then the report last."""
    start = time.monotonic()
    reads = 0
    while time.monotonic() - start < 120:
        try:
            rr = c.read_holding_registers(0, count=1, **unit(1))
        except Exception as e:  # the connection was cut
            return {"reads": reads, "ended": type(e).__name__, "after_s": time.monotonic() - start}
        if rr.isError():
            return {"reads": reads, "ended": "error:" + str(rr), "after_s": time.monotonic() - start}
        reads += 1
        if reads == READING_AFTER:
            # The test waits for this line before it ends the grant: a client still starting
            # (a loaded machine can take seconds to start Python) would otherwise connect
            # after the end and be refused, not cut.
            print("reading", flush=True)
        time.sleep(0.1)
    return {"reads": reads, "ended": "still open after 120 s"}


def once(c):
    """One read; after a revocation the tunnel is refused and the local connection closes."""
    try:
        rr = c.read_holding_registers(0, count=1, **unit(1))
    except Exception as e:
        return {"ok": False, "error": type(e).__name__}
    if rr.isError():
        return {"ok": False, "error": str(rr)}
    return {"ok": True}


def main():
    port, scenario = int(sys.argv[1]), sys.argv[2]
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
    if not c.connect():
        print(json.dumps({"connect": False}))
        return
    result = {"in_scope": in_scope, "hold": hold, "once": once}[scenario](c)
    c.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
