"""The hub-echo figure, Python side, written for this workspace: a gevent StreamServer echo
server on 127.0.0.1 (port chosen by the kernel, printed on stdout). The coroutines chapter's
bench drives it with the same Rust client it uses for its own hub and for a raw epoll loop, so
only the servers differ. Needs `python3 -m pip install gevent`. Runs until killed."""
import sys

from gevent.server import StreamServer


def handle(sock, _addr):
    while True:
        data = sock.recv(4096)
        if not data:
            return
        sock.sendall(data)


def main():
    server = StreamServer(("127.0.0.1", 0), handle, backlog=4096)
    server.start()
    print(server.server_port, flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
