"""The edXML format (QCVN 102:2016), pure: no I/O, no database."""
