"""A simulated PLC: a real pymodbus Modbus/TCP server, for end-to-end tests.

usage: plc_server.py PORT

Unit 1 serves 1000 holding registers where register n holds n (and the other tables zeroed).
Runs until killed. Exit code 2: pymodbus is not installed.
"""

import sys

try:
    from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import StartTcpServer

    try:
        from pymodbus.datastore import ModbusDeviceContext as DeviceContext
    except ImportError:  # pymodbus < 3.10
        from pymodbus.datastore import ModbusSlaveContext as DeviceContext
except ImportError:
    print("pymodbus is not installed: pip install pymodbus", file=sys.stderr)
    sys.exit(2)


def main():
    port = int(sys.argv[1])
    # pymodbus data blocks are addressed from 1 internally: the block starting at 1 maps
    # Modbus address 0 to its first value.
    device = DeviceContext(
        co=ModbusSequentialDataBlock(1, [0] * 1000),
        di=ModbusSequentialDataBlock(1, [0] * 1000),
        hr=ModbusSequentialDataBlock(1, list(range(1000))),
        ir=ModbusSequentialDataBlock(1, [0] * 1000),
    )
    try:
        context = ModbusServerContext(devices={1: device}, single=False)
    except TypeError:  # older keyword
        context = ModbusServerContext(slaves={1: device}, single=False)
    StartTcpServer(context=context, address=("127.0.0.1", port))


if __name__ == "__main__":
    main()
