"""TLS material: certificate validation, the local CA, SNI certificate choice."""
