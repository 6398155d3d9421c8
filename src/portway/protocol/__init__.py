"""Sans-IO protocol logic: HTTP/1.1 framing rules, header hygiene, handshakes. No sockets here."""
