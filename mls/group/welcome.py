"""GroupInfo and Welcome, both ways (RFC 9420 §12.4.3, §12.4.3.1).

Sending: :func:`sign_group_info` describes the current epoch for joiners, with the ratchet
tree and the ``external_pub`` key as extensions when asked; :func:`create_welcome` encrypts it
under the epoch's welcome secret and seals each new member's GroupSecrets to its KeyPackage's
init key.

Receiving, :func:`join_from_welcome`::

    Welcome
      │ our KeyPackageRef among secrets[].new_member ──────── WEL-01
      │ HPKE-open GroupSecrets with the KeyPackage's init key ─ WEL-02
      │ PSKs named by GroupSecrets are held ────────────────── WEL-03
      │ AEAD-open GroupInfo with the welcome key ───────────── WEL-04
      │ suites agree; tree from the extension or out of band ─ WEL-08, TREE-11
      │ signer is a member; GroupInfo signature ────────────── WEL-05, WEL-06
      │ GroupContext extensions supported ──────────────────── WEL-11, WEL-16
      │ the whole tree validates ───────────────────────────── WEL-09 (TREE-*)
      │ our leaf is our KeyPackage's leaf ──────────────────── WEL-10
      │ path secret matches the tree ───────────────────────── WEL-12
      │ key schedule; confirmation tag ─────────────────────── WEL-13
      │ ReInit / branch constraints ────────────────────────── WEL-14, WEL-15
      ▼
    GroupState (epoch of the Welcome)

Contract: nothing is changed on failure; the caller deletes the KeyPackage's private keys
once the join succeeded (KP-08).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..crypto.ciphersuite import Suite, get_suite
from ..crypto.labels import decrypt_with_label, encrypt_with_label
from ..errors import DecryptionError, MLSError, UsageError, ValidationError
from ..extensions import (
    DEFAULT_EXTENSION_TYPES,
    Extension,
    ExtensionSite,
    ExtensionType,
    ExternalPub,
    duplicate_extension_type,
    find_extension,
    make_extension,
    misplaced_extension_type,
)
from ..key_package import KeyPackage
from ..key_schedule import EpochSecrets, derive_welcome_secret, welcome_key_nonce
from ..messages import EncryptedGroupSecrets, GroupInfo, GroupSecrets, PathSecret, Welcome
from ..psk_id import PreSharedKeyID, PSKType, ResumptionPSKUsage
from ..ratchet_tree import RatchetTree
from ..secret_tree import SecretTree
from ..transcript import interim_transcript_hash
from ..tree_math import LeafIndex
from ..tree_validation import validate_ratchet_tree
from ..treekem import HPKECiphertext, TreeKEMPrivateKey
from .config import GroupConfig
from .epoch import resolve_psks
from .state import GroupState

WELCOME_LABEL = b"Welcome"  # RFC 9420 §12.4.3: EncryptWithLabel label of GroupSecrets

RULE_NO_KEY_PACKAGE = "§12.4.3.1/key-package-ref"
RULE_GROUP_SECRETS = "§12.4.3.1/group-secrets"
RULE_GROUP_INFO = "§12.4.3.1/group-info-decrypt"
RULE_SUITE = "§12.4.3.1/cipher-suite"
RULE_SIGNER = "§12.4.3.1/signer"
RULE_GROUP_INFO_SIGNATURE = "§12.4.3.1/group-info-signature"
RULE_EXTENSION_SUPPORT = "§12.4.3.1/group-context-extension-support"
RULE_GROUP_INFO_EXTENSIONS = "§13.4/group-info-extensions"
RULE_NO_TREE = "§12.4.3.1/ratchet-tree-missing"
RULE_OWN_LEAF = "§12.4.3.1/own-leaf"
RULE_CONFIRMATION_TAG = "§12.4.3.1/confirmation-tag"
RULE_RESUMPTION = "§12.4.3.1/resumption-psk"
RULE_REINIT = "§11.2/reinit-welcome"
RULE_BRANCH = "§11.3/branch-welcome"


@dataclass(frozen=True)
class JoinKeys:
    """One of our KeyPackages and its private keys (RFC 9420 §10)."""

    key_package: KeyPackage
    init_priv: bytes = field(repr=False)
    encryption_priv: bytes = field(repr=False)
    signature_priv: bytes = field(repr=False)


# --------------------------------------------------------------------------------------------
# Sending


def sign_group_info(
    state: GroupState, *, with_tree: bool = True, with_external_pub: bool = False
) -> GroupInfo:
    """A GroupInfo for the current epoch, signed by this member (RFC 9420 §12.4.3)."""
    extensions: list[Extension] = []
    if with_tree:
        extensions.append(state.tree.extension())
    if with_external_pub:
        _, public = state.secrets.external_key_pair(state.suite)
        extensions.append(make_extension(ExtensionType.EXTERNAL_PUB, ExternalPub(public)))
    info = GroupInfo(
        state.group_context, tuple(extensions), state.confirmation_tag, state.own_leaf, b""
    )
    return info.signed(state.suite, state.signature_priv)


def create_welcome(
    state: GroupState,
    added: Sequence[tuple[LeafIndex, KeyPackage]],
    path_secret_for: Callable[[LeafIndex], bytes | None],
    psks: Sequence[PreSharedKeyID],
    config: GroupConfig,
) -> Welcome:
    """The Welcome for the members ``added`` to the epoch ``state`` begins (RFC 9420 §12.4.3).

    Args:
        state: the new epoch's state (its secrets hold the joiner secret).
        path_secret_for: the path secret of the common ancestor with each new member.
        psks: the PSKs of the Commit, which the new members need too (§8.4).
    """
    suite = state.suite
    info = sign_group_info(state, with_tree=config.ratchet_tree_in_welcome)
    key, nonce = state.secrets.welcome_key_nonce(suite)
    encrypted_group_info = suite.aead_seal(key, nonce, b"", info.encode())
    secrets = []
    for leaf, kp in added:
        path_secret = path_secret_for(leaf)
        group_secrets = GroupSecrets(
            state.secrets.joiner_secret,
            None if path_secret is None else PathSecret(path_secret),
            tuple(psks),
        )
        kem_output, ciphertext = encrypt_with_label(
            suite, kp.init_key, WELCOME_LABEL, encrypted_group_info, group_secrets.encode()
        )
        secrets.append(EncryptedGroupSecrets(kp.ref(suite), HPKECiphertext(kem_output, ciphertext)))
    return Welcome(int(suite.id), tuple(secrets), encrypted_group_info)


# --------------------------------------------------------------------------------------------
# Receiving


def find_join_keys(
    welcome: Welcome, lookup: Callable[[bytes], JoinKeys | None]
) -> tuple[Suite, JoinKeys, EncryptedGroupSecrets]:
    """The entry of ``welcome`` for one of our KeyPackages (WEL-01).

    Raises:
        ValidationError: rules :data:`RULE_SUITE`, :data:`RULE_NO_KEY_PACKAGE`.
    """
    try:
        suite = get_suite(welcome.cipher_suite)
    except MLSError as exc:
        raise ValidationError(RULE_SUITE, f"cipher suite {welcome.cipher_suite}") from exc
    for entry in welcome.secrets:
        keys = lookup(entry.new_member)
        if keys is None:
            continue
        # KP-05 (RFC 9420 §12.4.3.1): the KeyPackage is in the Welcome's suite
        if keys.key_package.cipher_suite != welcome.cipher_suite:
            raise ValidationError(RULE_SUITE, "KeyPackage suite differs from the Welcome's")
        if not hmac.compare_digest(keys.key_package.ref(suite), entry.new_member):
            continue
        return suite, keys, entry
    raise ValidationError(RULE_NO_KEY_PACKAGE, "no KeyPackage of ours in the Welcome")


def join_from_welcome(
    welcome: Welcome,
    lookup: Callable[[bytes], JoinKeys | None],
    config: GroupConfig,
    *,
    ratchet_tree: RatchetTree | bytes | None = None,
    resumed_from: GroupState | None = None,
) -> tuple[GroupState, bytes]:
    """Joins a group from a Welcome (RFC 9420 §12.4.3.1; steps in the module docstring).

    Args:
        lookup: our KeyPackages' keys by KeyPackageRef.
        ratchet_tree: the tree, when the GroupInfo does not carry it (encoded or decoded).
        resumed_from: the old group, for a ReInit or branch Welcome (§11.2, §11.3).

    Returns:
        the new state, and the KeyPackageRef used (delete its keys: KP-08).

    Raises:
        ValidationError: a check failed (``.rule``); DecryptionError for HPKE/AEAD failures.
        DecodeError: GroupSecrets or GroupInfo does not decode.
    """
    suite, keys, entry = find_join_keys(welcome, lookup)
    # WEL-02 (RFC 9420 §12.4.3.1): GroupSecrets open with the init key
    try:
        plain = decrypt_with_label(
            suite,
            keys.init_priv,
            WELCOME_LABEL,
            welcome.encrypted_group_info,
            entry.encrypted_group_secrets.kem_output,
            entry.encrypted_group_secrets.ciphertext,
        )
    except DecryptionError as exc:
        raise DecryptionError(RULE_GROUP_SECRETS, "GroupSecrets do not decrypt") from exc
    group_secrets = GroupSecrets.decode(plain)
    other_groups = _resumption_sources(resumed_from)
    # WEL-03 (RFC 9420 §12.4.3.1, §8.4): every PSK is held; one resumption PSK at most for
    # reinit/branch
    resumptions = [
        p
        for p in group_secrets.psks
        if p.psktype == PSKType.RESUMPTION and p.usage != ResumptionPSKUsage.APPLICATION
    ]
    if len(resumptions) > 1:
        raise ValidationError(RULE_RESUMPTION, "more than one reinit/branch PSK")
    for p in group_secrets.psks:
        if len(p.psk_nonce) != suite.hash_length:
            raise ValidationError(RULE_RESUMPTION, "psk_nonce length")
    psk_value = resolve_psks(
        suite,
        group_secrets.psks,
        group_id=b"",  # a joiner holds no resumption PSK of the new group
        resumption_psks={},
        external_psks=config.external_psks,
        other_groups=other_groups,
    )
    # WEL-04 (RFC 9420 §12.4.3.1): the GroupInfo opens with the welcome key
    welcome_secret = derive_welcome_secret(suite, group_secrets.joiner_secret, psk_value)
    key, nonce = welcome_key_nonce(suite, welcome_secret)
    try:
        info_bytes = suite.aead_open(key, nonce, b"", welcome.encrypted_group_info)
    except DecryptionError as exc:
        raise DecryptionError(RULE_GROUP_INFO, "GroupInfo does not decrypt") from exc
    info = GroupInfo.decode(info_bytes)
    context = info.group_context
    # WEL-08 (RFC 9420 §12.4.3.1): one suite throughout
    if context.cipher_suite != welcome.cipher_suite:
        raise ValidationError(RULE_SUITE, "GroupInfo suite differs from the Welcome's")
    if context.version != keys.key_package.version:
        raise ValidationError(RULE_SUITE, "GroupInfo version differs from the KeyPackage's")
    tree = tree_from_group_info(suite, info, ratchet_tree)
    verify_group_info(suite, info, tree)
    check_context_extensions(context.extensions, keys.key_package)
    # WEL-09, TREE-* (RFC 9420 §12.4.3.1)
    validate_ratchet_tree(
        tree,
        context,
        lifetime_policy=config.lifetime_policy,
        credential_validator=config.credential_validator,
    )
    # WEL-10 (RFC 9420 §12.4.3.1): our KeyPackage's leaf is in the tree
    own = tree.find_leaf(keys.key_package.leaf_node)
    if own is None:
        raise ValidationError(RULE_OWN_LEAF, "our leaf is not in the tree")
    # WEL-12 (RFC 9420 §12.4.3.1): the path secret matches the tree above the ancestor
    path_secret = group_secrets.path_secret
    private_key = TreeKEMPrivateKey.for_joiner(
        tree,
        own,
        keys.encryption_priv,
        LeafIndex(info.signer),
        None if path_secret is None else path_secret.path_secret,
    )
    secrets = EpochSecrets.from_joiner_secret(
        suite, group_secrets.joiner_secret, psk_value, context
    )
    # WEL-13 (RFC 9420 §12.4.3.1): the confirmation tag verifies
    expected = secrets.confirmation_tag(suite, context.confirmed_transcript_hash)
    if not hmac.compare_digest(expected, info.confirmation_tag):
        raise ValidationError(RULE_CONFIRMATION_TAG, "confirmation tag does not verify")
    if resumptions:
        check_resumption(resumptions[0], info, tree, resumed_from)
    state = GroupState(
        suite=suite,
        group_context=context,
        tree=tree,
        private_key=private_key,
        signature_priv=keys.signature_priv,
        interim_transcript_hash=interim_transcript_hash(
            suite, context.confirmed_transcript_hash, info.confirmation_tag
        ),
        confirmation_tag=info.confirmation_tag,
        secrets=secrets,
        secret_tree=SecretTree(
            suite, secrets.encryption_secret, tree.n_leaves, config.ratchet_policy
        ),
        resumption_psks={context.epoch: secrets.resumption_psk},
    )
    return state, entry.new_member


def tree_from_group_info(
    suite: Suite, info: GroupInfo, ratchet_tree: RatchetTree | bytes | None
) -> RatchetTree:
    """The tree of the ``ratchet_tree`` extension, else the one given out of band (TREE-11).

    Raises:
        ValidationError: neither is there, or the GroupInfo extensions repeat a type.
        DecodeError: the tree does not decode.
    """
    dup = duplicate_extension_type(info.extensions)
    if dup is not None:
        raise ValidationError(RULE_GROUP_INFO_EXTENSIONS, f"extension type {dup} repeated")
    ext = find_extension(info.extensions, ExtensionType.RATCHET_TREE)
    if ext is not None:
        return RatchetTree.decode(suite, ext.extension_data)
    if ratchet_tree is None:
        raise ValidationError(RULE_NO_TREE, "no ratchet_tree extension and no tree given")
    if isinstance(ratchet_tree, RatchetTree):
        return ratchet_tree.copy()
    return RatchetTree.decode(suite, ratchet_tree)


def verify_group_info(suite: Suite, info: GroupInfo, tree: RatchetTree) -> None:
    """WEL-05, WEL-06 (RFC 9420 §12.4.3.1): the signer is a member and signed it."""
    # VALIDATION TREE-01: the signer index is range-checked before any tree math
    signer = info.signer
    leaf = tree.leaf_node(LeafIndex(signer)) if 0 <= signer < tree.n_leaves else None
    if leaf is None:
        raise ValidationError(RULE_SIGNER, f"signer leaf {signer} is not a member")
    try:
        info.verify_signature(suite, leaf.signature_key)
    except ValidationError as exc:
        raise type(exc)(RULE_GROUP_INFO_SIGNATURE, "GroupInfo signature invalid") from exc


def check_context_extensions(extensions: Sequence[Extension], key_package: KeyPackage) -> None:
    """WEL-11 (RFC 9420 §12.4.3.1, §13.4): we support every GroupContext extension."""
    misplaced = misplaced_extension_type(extensions, ExtensionSite.GROUP_CONTEXT)
    if misplaced is not None:
        raise ValidationError(RULE_EXTENSION_SUPPORT, f"extension {misplaced} not for GC")
    dup = duplicate_extension_type(extensions)
    if dup is not None:
        raise ValidationError(RULE_EXTENSION_SUPPORT, f"extension type {dup} repeated")
    ours = key_package.leaf_node.capabilities.extensions
    for ext in extensions:
        if ext.extension_type not in DEFAULT_EXTENSION_TYPES and ext.extension_type not in ours:
            raise ValidationError(
                RULE_EXTENSION_SUPPORT, f"extension {ext.extension_type} not supported"
            )


def _resumption_sources(old: GroupState | None) -> Mapping[tuple[bytes, int], bytes]:
    if old is None:
        return {}
    return {(old.group_id, e): v for e, v in old.resumption_psks.items()}


def check_resumption(
    psk: PreSharedKeyID, info: GroupInfo, tree: RatchetTree, old: GroupState | None
) -> None:
    """WEL-14, WEL-15 (RFC 9420 §11.2, §11.3): a ReInit or branch Welcome starts the new
    group at epoch 1 with parameters matching the old group."""
    context = info.group_context
    rule = RULE_REINIT if psk.usage == ResumptionPSKUsage.REINIT else RULE_BRANCH
    if context.epoch != 1:
        raise ValidationError(rule, f"resumed group starts at epoch {context.epoch}")
    if old is None:
        raise UsageError("a ReInit or branch Welcome needs the old group")
    old_members = {leaf.signature_key for _, leaf in old.tree.leaves()}
    old_identities = {leaf.credential for _, leaf in old.tree.leaves()}
    if psk.usage == ResumptionPSKUsage.REINIT:
        reinit = None if old.pending_reinit is None else old.pending_reinit.reinit
        if reinit is None:
            raise ValidationError(rule, "the old group committed no ReInit")
        if (
            reinit.group_id != context.group_id
            or reinit.version != context.version
            or reinit.cipher_suite != context.cipher_suite
            or tuple(reinit.extensions) != tuple(context.extensions)
        ):
            raise ValidationError(rule, "parameters differ from the ReInit")
        new_identities = {leaf.credential for _, leaf in tree.leaves()}
        if new_identities != old_identities:
            raise ValidationError(rule, "membership differs from the old group")
    else:
        if context.version != old.group_context.version or context.cipher_suite != int(
            old.suite.id
        ):
            raise ValidationError(rule, "version or suite differs from the old group")
        for _, leaf in tree.leaves():
            if leaf.credential not in old_identities and leaf.signature_key not in old_members:
                raise ValidationError(rule, "a member not in the old group")


__all__ = [
    "JoinKeys",
    "create_welcome",
    "join_from_welcome",
    "sign_group_info",
    "tree_from_group_info",
    "verify_group_info",
]
