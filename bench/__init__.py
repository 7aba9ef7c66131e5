"""The benchmark: the gateway against a bare aiosmtpd sink under the same load (`make bench`)."""
