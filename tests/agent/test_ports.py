"""Port checks the local services make before they start (agent/ports.py)."""

from __future__ import annotations

import socket

from agent.ports import free_loopback_port, http_ok, listen_refusal, port_in_use


def test_a_port_another_server_listens_on_is_refused_in_the_os_words():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert listen_refusal("127.0.0.1", port) == "Address already in use"
        assert port_in_use("127.0.0.1", port)


def test_a_free_port_can_be_listened_on_and_nothing_answers_there():
    port = free_loopback_port()
    assert listen_refusal("127.0.0.1", port) is None
    assert not port_in_use("127.0.0.1", port)


def test_an_address_this_host_does_not_have_is_refused():
    # TEST-NET-1 (RFC 5737) is never a local address
    assert listen_refusal("192.0.2.1", free_loopback_port()) == "Cannot assign requested address"


def test_a_service_is_up_when_its_health_check_answers_2xx():
    import http.server
    import threading

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert http_ok(f"{base}/health")
        assert not http_ok(f"{base}/busy")
    finally:
        server.shutdown()
        server.server_close()
    assert not http_ok(f"http://127.0.0.1:{free_loopback_port()}/health")  # nothing there
