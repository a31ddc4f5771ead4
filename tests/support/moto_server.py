"""moto's server (same arguments as `moto_server`) with each DynamoDB request
applied alone, as DynamoDB applies a conditional write atomically: moto's server
answers requests on threads, which can interleave between a condition's check
and its write. For tests where several processes write the same items at once
(tests/fanout.rs; support/moto.rs `start_serialized`). SQS requests (long
polls) are not held up, and every request is still answered by moto's own code.
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler

LOCK = threading.RLock()

_call_action = DynamoHandler.call_action


def call_action(self):
    with LOCK:
        return _call_action(self)


DynamoHandler.call_action = call_action


if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())
