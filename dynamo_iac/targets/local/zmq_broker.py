"""Local ZMQ XSUB/XPUB proxy for Dynamo's event plane, bound to loopback only.

Run by the *Dynamo* interpreter (it has pyzmq): `python zmq_broker.py HOST XSUB_PORT XPUB_PORT`.
Without a broker every Dynamo event publisher binds tcp://0.0.0.0:<random> (hard-coded upstream);
with DYN_ZMQ_BROKER_URL pointing here, publishers connect instead and nothing listens beyond
loopback. Standalone on purpose: it must not import dynamo_iac.
"""
import signal
import sys

import zmq


def main() -> None:
    host, xsub_port, xpub_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = zmq.Context()
    xsub = ctx.socket(zmq.XSUB)
    xsub.bind(f"tcp://{host}:{xsub_port}")
    xpub = ctx.socket(zmq.XPUB)
    xpub.bind(f"tcp://{host}:{xpub_port}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"zmq broker: xsub tcp://{host}:{xsub_port} xpub tcp://{host}:{xpub_port}", flush=True)
    try:
        zmq.proxy(xsub, xpub)
    except (KeyboardInterrupt, SystemExit, zmq.ContextTerminated):
        pass
    finally:
        xsub.close(0)
        xpub.close(0)
        ctx.term()


if __name__ == "__main__":
    main()
