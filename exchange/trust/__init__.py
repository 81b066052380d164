"""XML signatures and the certificate trust store."""
