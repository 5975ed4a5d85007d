"""dnp3py's master (MIT, an implementation that is not ours) as the test peer of the DNP3
gateway: runs the steps given as JSON against 127.0.0.1:<port> and prints one JSON result
per step.

    python3 dnp3_master.py <port> '<steps>' [<master address> <outstation address>]

Steps: ["class0"], ["integrity"], ["read", group, variation, start, stop],
["direct_operate", index, "latch_on"|"latch_off"|"pulse_on"],
["select_operate", index, code], ["direct_operate_analog", index, value],
["enable_unsolicited", [classes]], ["disable_unsolicited", [classes]],
["listen", seconds], ["cold_restart"], ["delay_measure"].

A result: {"step": name, "iin1": .., "iin2": .., "values": {type: {index: value}}} per
response (a select_operate gives the SELECT's and the OPERATE's), or {"step": name,
"error": "..."} when the master got no answer (timeout, link closed). After an error the
remaining steps are not run: the link is gone or in an unknown state. With
DNP3_MASTER_PROGRESS=<file>, the name of each step is appended to that file once it is
done, so a test can act between steps.
"""

import asyncio
import json
import os
import sys

from dnp3.application.builder import (
    build_all_objects_request,
    build_cold_restart_request,
)
from dnp3.core.enums import ControlCode, FunctionCode
from dnp3.master import CommandBuilder, Master, MasterConfig
from dnp3.master.tcp_runner import MasterTcpRunner


class Collect:
    """An SOE handler keeping the last value of every point, by type and index."""

    def __init__(self):
        self.values = {}

    def _put(self, kind, values):
        d = self.values.setdefault(kind, {})
        for v in values:
            d[str(v.index)] = v.value

    def on_binary_input(self, values, info):
        self._put("binary_input", values)

    def on_binary_output(self, values, info):
        self._put("binary_output", values)

    def on_analog_input(self, values, info):
        self._put("analog_input", values)

    def on_analog_output(self, values, info):
        self._put("analog_output", values)

    def on_counter(self, values, info):
        self._put("counter", values)

    def on_frozen_counter(self, values, info):
        self._put("frozen_counter", values)

    def on_double_bit_input(self, values, info):
        self._put("double_bit_input", values)

    def __getattr__(self, name):
        # Callbacks this test does not look at.
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)


CODES = {
    "latch_on": ControlCode.LATCH_ON,
    "latch_off": ControlCode.LATCH_OFF,
    "pulse_on": ControlCode.PULSE_ON,
}


def progress(name):
    """Tell a waiting test that a step is done (its answer read), if it asked to know."""
    path = os.environ.get("DNP3_MASTER_PROGRESS")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


def result(name, infos, handler):
    out = []
    for info in infos:
        iin = int(info.iin)
        out.append({"iin1": iin & 0xFF, "iin2": iin >> 8, "unsolicited": info.is_unsolicited})
    r = {"step": name, "responses": out, "values": handler.values}
    handler.values = {}
    return r


async def run(port, steps, master_addr, outstation_addr):
    handler = Collect()
    config = MasterConfig(address=master_addr, outstation_address=outstation_addr)
    master = Master(config=config, handler=handler)
    runner = MasterTcpRunner(master=master, host="127.0.0.1", port=port, response_timeout=3.0)
    results = []
    await runner.open()
    try:
        for step in steps:
            name = step[0]
            try:
                if name == "class0":
                    req = build_all_objects_request(
                        FunctionCode.READ, 60, 1, seq=master.next_request_sequence()
                    )
                    infos = await runner.request(req)
                elif name == "integrity":
                    infos = await runner.integrity_poll()
                elif name == "read":
                    _, g, v, start, stop = step
                    infos = await runner.request(master.build_range_poll(g, v, start, stop))
                elif name in ("direct_operate", "select_operate"):
                    _, index, code = step
                    b = CommandBuilder().add_crob(index, CODES[code])
                    if name == "direct_operate":
                        infos = await runner.request(master.build_direct_operate(b.build_direct_operate()))
                    else:
                        infos = await runner.request(master.build_select(b.build_select()))
                        infos += await runner.request(master.build_operate(b.build_operate()))
                elif name == "direct_operate_analog":
                    _, index, value = step
                    b = CommandBuilder().add_analog(index, value)
                    infos = await runner.request(master.build_direct_operate(b.build_direct_operate()))
                elif name == "enable_unsolicited":
                    c = step[1]
                    infos = await runner.enable_unsolicited(class_1=1 in c, class_2=2 in c, class_3=3 in c)
                elif name == "disable_unsolicited":
                    c = step[1]
                    infos = await runner.disable_unsolicited(class_1=1 in c, class_2=2 in c, class_3=3 in c)
                elif name == "listen":
                    info = await runner.listen_unsolicited(timeout=step[1])
                    infos = [] if info is None else [info]
                elif name == "cold_restart":
                    infos = await runner.request(build_cold_restart_request(seq=master.next_request_sequence()))
                elif name == "delay_measure":
                    infos = await runner.request(master.build_delay_measure())
                else:
                    raise ValueError(f"unknown step {name}")
                results.append(result(name, infos, handler))
                progress(name)
            except Exception as e:  # the gateway cut the link, or no answer came
                results.append({"step": name, "error": f"{type(e).__name__}: {e}"})
                break
    finally:
        await runner.close()
    return results


def main():
    port = int(sys.argv[1])
    steps = json.loads(sys.argv[2])
    master_addr = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    outstation_addr = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    print(json.dumps(asyncio.run(run(port, steps, master_addr, outstation_addr))))


if __name__ == "__main__":
    main()
