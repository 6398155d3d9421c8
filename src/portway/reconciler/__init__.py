"""Store → immutable, versioned Snapshots, published to the data planes."""
