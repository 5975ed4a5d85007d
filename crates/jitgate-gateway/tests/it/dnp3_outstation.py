"""dnp3py's outstation (MIT, an implementation that is not ours) as a device behind the DNP3
gateway.

    python3 dnp3_outstation.py <port> <log file> [<outstation address> <master address>]

Ten points of each type: binary input n is on when n is odd, analog input n is 200 + n,
counter n is 2000 + n, outputs start off / 0. Binary and analog outputs accept SELECT,
OPERATE and DIRECT_OPERATE. Every application fragment it receives is appended to the log
file (one JSON line `{"request": "<hex>"}`), and every control it executes
(`{"operate": "binary_output", "index": n, "value": v}`), so a test can say exactly what
reached the device. Prints `listening` once it accepts connections.
"""

import asyncio
import json
import sys

from dnp3.database import Database
from dnp3.outstation import (
    CommandResult,
    DefaultCommandHandler,
    Outstation,
    OutstationConfig,
    OutstationTcpRunner,
)

POINTS = 10


def log(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


class Controls(DefaultCommandHandler):
    def __init__(self, db, path):
        self.db = db
        self.path = path

    def _binary(self, index, code):
        if index >= POINTS:
            return CommandResult.not_supported()
        value = int(code) & 0x0F in (1, 3) or int(code) >> 6 == 1
        self.db.update_binary_output(index, value)
        log(self.path, {"operate": "binary_output", "index": index, "value": value})
        return CommandResult.success()

    def _analog(self, index, value):
        if index >= POINTS:
            return CommandResult.not_supported()
        self.db.update_analog_output(index, value)
        log(self.path, {"operate": "analog_output", "index": index, "value": value})
        return CommandResult.success()

    def select_binary_output(self, index, code, count, on_time, off_time):
        return CommandResult.success() if index < POINTS else CommandResult.not_supported()

    def operate_binary_output(self, index, code, count, on_time, off_time, select_sequence):
        return self._binary(index, code)

    def direct_operate_binary_output(self, index, code, count, on_time, off_time):
        return self._binary(index, code)

    def select_analog_output(self, index, value):
        return CommandResult.success() if index < POINTS else CommandResult.not_supported()

    def operate_analog_output(self, index, value, select_sequence):
        return self._analog(index, value)

    def direct_operate_analog_output(self, index, value):
        return self._analog(index, value)


async def main():
    port = int(sys.argv[1])
    path = sys.argv[2]
    address = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    master = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    db = Database()
    for n in range(POINTS):
        db.add_binary_input(n, value=n % 2 == 1)
        db.add_binary_output(n, value=False)
        db.add_analog_input(n, value=200.0 + n)
        db.add_analog_output(n, value=0.0)
        db.add_counter(n, value=2000 + n)
    outstation = Outstation(
        config=OutstationConfig(address=address, master_address=master, time_sync_required=False),
        database=db,
        handler=Controls(db, path),
    )
    process = outstation.process_request

    def logged(data, *, peer=None):
        log(path, {"request": bytes(data).hex()})
        return process(data, peer=peer) if peer is not None else process(data)

    outstation.process_request = logged
    runner = OutstationTcpRunner(outstation=outstation, host="127.0.0.1", port=port)
    task = asyncio.create_task(runner.run())
    while not runner.is_running:
        await asyncio.sleep(0.01)
    print("listening", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())
