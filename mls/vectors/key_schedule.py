"""``key-schedule.json``: a chain of epochs through the key schedule (RFC 9420 §8, §8.5)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..group_context import GroupContext, ProtocolVersion
from ..key_schedule import EpochSecrets, export_secret, external_key_pair
from . import expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    group_id = bytes.fromhex(case["group_id"])
    init_secret = bytes.fromhex(case["initial_init_secret"])
    for i, epoch in enumerate(case["epochs"]):
        at = f"epochs[{i}]."
        # The GroupContext of epoch i has the vector's suite, group id, tree hash and
        # confirmed transcript hash, epoch number i and no extensions.
        context = GroupContext(
            version=ProtocolVersion.MLS10,
            cipher_suite=case["cipher_suite"],
            group_id=group_id,
            epoch=i,
            tree_hash=bytes.fromhex(epoch["tree_hash"]),
            confirmed_transcript_hash=bytes.fromhex(epoch["confirmed_transcript_hash"]),
            extensions=(),
        )
        expect(at + "group_context", context.encode(), epoch["group_context"])
        # Each epoch starts from the previous epoch's init_secret (the vector's initial one
        # for epoch 0) with the given commit_secret and psk_secret.
        secrets = EpochSecrets.from_init_secret(
            suite,
            init_secret,
            bytes.fromhex(epoch["commit_secret"]),
            bytes.fromhex(epoch["psk_secret"]),
            context,
        )
        for name in (
            "joiner_secret",
            "welcome_secret",
            "init_secret",
            "sender_data_secret",
            "encryption_secret",
            "exporter_secret",
            "epoch_authenticator",
            "external_secret",
            "confirmation_key",
            "membership_key",
            "resumption_psk",
        ):
            expect(at + name, getattr(secrets, name), epoch[name])
        # external_pub is the public half of KEM.DeriveKeyPair(external_secret).
        _, external_pub = external_key_pair(suite, secrets.external_secret)
        expect(at + "external_pub", external_pub, epoch["external_pub"])
        # exporter.secret is MLS-Exporter(label, context, length) of this epoch. The label is
        # a JSON string (it merely looks like hex): its UTF-8 bytes are the label.
        exporter = epoch["exporter"]
        exported = export_secret(
            suite,
            secrets.exporter_secret,
            exporter["label"].encode(),
            bytes.fromhex(exporter["context"]),
            exporter["length"],
        )
        expect(at + "exporter.secret", exported, exporter["secret"])
        init_secret = secrets.init_secret
