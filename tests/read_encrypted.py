"""Reads a strata-encrypted Parquet file with pyarrow, outside strata.

Usage: python read_encrypted.py KEYRING.json FILE.parquet
Prints the row count and the first value of `user`. docs/encryption.md explains it.
"""

import base64
import json
import sys

import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

keyring = json.load(open(sys.argv[1]))


class KeyringKms(pe.KmsClient):
    """Unwraps data keys with the tenant master keys of a strata keyring."""

    def __init__(self, config):
        pe.KmsClient.__init__(self)

    def wrap_key(self, key_bytes, master_key_identifier):
        raise NotImplementedError("reading only")

    def unwrap_key(self, wrapped_key, master_key_identifier):
        # masterKeyID is "<tenant>/v<version>"; wrappedDEK is
        # base64(nonce || AES-256-GCM(master key, nonce, data key, aad = masterKeyID)).
        tenant, version = master_key_identifier.rsplit("/v", 1)
        master = next(k for k in keyring["tenants"][tenant] if k["version"] == int(version))
        blob = base64.b64decode(wrapped_key)
        aes = AESGCM(base64.b64decode(master["key"]))
        return aes.decrypt(blob[:12], blob[12:], master_key_identifier.encode())


factory = pe.CryptoFactory(lambda config: KeyringKms(config))
properties = factory.file_decryption_properties(
    pe.KmsConnectionConfig(), pe.DecryptionConfiguration()
)
table = pq.ParquetFile(sys.argv[2], decryption_properties=properties).read()
print(table.num_rows, table.column("user")[0])
