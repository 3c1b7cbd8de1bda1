"""Hypothesis strategies for the wire structs, derived from their codec declarations.

:func:`for_struct` walks ``Struct.codec_fields()`` and builds a value of every field from its
marker (``UInt``, ``Opaque``, ``Fixed``, ``Enum``, ``Vector``, ``Optional``, ``Empty``, a nested
``Struct``, and ``Select`` on a tag drawn earlier in the same struct). A tag field that some
``Select`` reads is drawn only from the tags every such ``Select`` knows. Sizes are kept small.

Structs whose codecs are hand-written (their shape depends on an enclosing value) get an
explicit strategy in :data:`EXPLICIT`.

:func:`import_all_mls` imports every ``mls`` module, so that ``mls.codec.STRUCTS`` is complete.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any

from hypothesis import strategies as st

import mls
from mls.codec import (
    Codec,
    EmptyCodec,
    Enum,
    Fixed,
    OpaqueCodec,
    Optional,
    Select,
    Struct,
    StructCodec,
    UInt,
    Vector,
)
from mls.framing import (
    AuthenticatedContent,
    AuthenticatedContentTBM,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    FramedContentTBS,
    PublicMessage,
    SenderType,
)
from mls.group_context import GroupContext

MAX_LIST = 2
"""Longest vector drawn."""


def import_all_mls() -> None:
    """Imports every module of ``mls`` so that every Struct registers."""
    for info in pkgutil.walk_packages(mls.__path__, "mls."):
        if info.name.startswith("mls.vectors.") or info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)


def opaque() -> st.SearchStrategy[bytes]:
    # Mostly tiny; sometimes past 63 bytes so the two-byte length header is exercised.
    return st.one_of(st.binary(max_size=6), st.binary(min_size=64, max_size=70))


@cache
def for_codec(codec: Codec[Any]) -> st.SearchStrategy[Any]:
    """A strategy for values of ``codec`` (not ``Select``, which its struct handles)."""
    if isinstance(codec, UInt):
        top = (1 << (8 * codec.width)) - 1
        return st.one_of(st.sampled_from([0, 1, top]), st.integers(0, top))
    if isinstance(codec, OpaqueCodec):
        return opaque()
    if isinstance(codec, Fixed):
        return st.binary(min_size=codec.size, max_size=codec.size)
    if isinstance(codec, Enum):
        return st.sampled_from(list(codec.enum))
    if isinstance(codec, Vector):
        return st.lists(for_codec(codec.element), max_size=MAX_LIST).map(tuple)
    if isinstance(codec, Optional):
        return st.one_of(st.none(), for_codec(codec.inner))
    if isinstance(codec, EmptyCodec):
        return st.none()
    if isinstance(codec, StructCodec):
        return for_struct(codec.cls)
    raise TypeError(f"no strategy for codec {codec!r}")


@cache
def for_struct(cls: type[Struct]) -> st.SearchStrategy[Any]:
    """A strategy for values of ``cls`` (explicit if listed in :data:`EXPLICIT`)."""
    if cls in EXPLICIT:
        return EXPLICIT[cls]()
    fields = cls.codec_fields()
    tag_choices: dict[str, set[Any]] = {}
    for _, codec in fields:
        if isinstance(codec, Select):
            keys = set(codec.variants)
            tag_choices[codec.tag] = tag_choices.get(codec.tag, keys) & keys

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        values: dict[str, Any] = {}
        for name, codec in fields:
            if isinstance(codec, Select):
                values[name] = draw(for_codec(codec.variants[values[codec.tag]]))
            elif name in tag_choices:
                values[name] = draw(st.sampled_from(sorted(tag_choices[name])))
            else:
                values[name] = draw(for_codec(codec))
        return cls(**values)

    return build()


# --------------------------------------------------------------------------------------------
# Hand-written codecs: the shape depends on an enclosing value


def _auth_for(content_type: ContentType) -> st.SearchStrategy[FramedContentAuthData]:
    tag = opaque() if content_type == ContentType.COMMIT else st.none()
    return st.builds(FramedContentAuthData, opaque(), tag)


@st.composite
def _auth(draw: st.DrawFn) -> FramedContentAuthData:
    return draw(_auth_for(draw(st.sampled_from(list(ContentType)))))


@st.composite
def _authenticated_content(draw: st.DrawFn) -> AuthenticatedContent:
    content: FramedContent = draw(for_struct(FramedContent))
    wire_format = draw(for_codec(AuthenticatedContent.codec_fields()[0][1]))
    return AuthenticatedContent(wire_format, content, draw(_auth_for(content.content_type)))


@st.composite
def _content_tbs(draw: st.DrawFn) -> FramedContentTBS:
    content: FramedContent = draw(for_struct(FramedContent))
    fields = dict(FramedContentTBS.codec_fields())
    needs_context = content.sender.sender_type in (SenderType.MEMBER, SenderType.NEW_MEMBER_COMMIT)
    context = draw(for_struct(GroupContext)) if needs_context else None
    return FramedContentTBS(
        draw(for_codec(fields["version"])), draw(for_codec(fields["wire_format"])), content, context
    )


@st.composite
def _tbm(draw: st.DrawFn) -> AuthenticatedContentTBM:
    tbs: FramedContentTBS = draw(_content_tbs())
    return AuthenticatedContentTBM(tbs, draw(_auth_for(tbs.content.content_type)))


@st.composite
def _public_message(draw: st.DrawFn) -> PublicMessage:
    content: FramedContent = draw(for_struct(FramedContent))
    auth = draw(_auth_for(content.content_type))
    tag = draw(opaque()) if content.sender.sender_type == SenderType.MEMBER else None
    return PublicMessage(content, auth, tag)


EXPLICIT: dict[type[Struct], Any] = {
    FramedContentAuthData: _auth,
    AuthenticatedContent: _authenticated_content,
    FramedContentTBS: _content_tbs,
    AuthenticatedContentTBM: _tbm,
    PublicMessage: _public_message,
}
"""Struct -> zero-argument function returning its strategy, for hand-written codecs."""

HAND_WRITTEN = frozenset(EXPLICIT)
