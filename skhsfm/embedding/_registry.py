"""The backbone registry and the one parser of backbone names.

Every place that reads a backbone name goes through :func:`parse_backbone`:
the embedder (its ``backbone`` / ``model_name`` parameters, its cache key and
its loading) and the ``skhsfm`` command (``--backbone``). The parser returns a
:class:`BackboneName`; the loaders take that value and never look at string
prefixes themselves.

Accepted forms
--------------
Two arguments, as the embedder's parameters::

    parse_backbone("open_clip", "ViT-B-32")          # open_clip, ViT-B-32
    parse_backbone("open_clip", "hf-hub:org/repo")   # open_clip, source hf-hub
    parse_backbone("open_clip", "local-dir:/path")   # open_clip, source local-dir
    parse_backbone("torchvision", "resnet50")        # torchvision, resnet50
    parse_backbone(module_or_callable)               # custom

One string, as on the command line::

    "open_clip:ViT-B-32", "open_clip:hf-hub:org/repo", "torchvision:resnet50"
    "hf-hub:org/repo", "local-dir:/path"  # the library that owns the source
    "resnet50", "ViT-B-32"               # library=..., else looked up by name

Only a bare model name without ``library=`` imports the libraries (to read
their model lists); everything else is string work, so parsing is cheap and
the loaders, which import the libraries anyway, check that the model exists.
"""

from dataclasses import dataclass, field
from types import ModuleType
from typing import Optional

from skhsfm.embedding import _custom, _open_clip, _torchvision

__all__ = [
    "CUSTOM",
    "LIBRARIES",
    "SOURCES",
    "BackboneName",
    "Library",
    "library_names",
    "load_backbone",
    "parse_backbone",
]

#: The library name of a user-supplied ``torch.nn.Module`` or callable.
CUSTOM = "custom"


@dataclass(frozen=True)
class Library:
    """A library that builds backbones from a model name.

    Attributes
    ----------
    name : str
        How users name the library: the embedder's ``backbone`` value and the
        ``library:`` prefix of a one-string name.
    module : module
        The loader module; it has ``list_models()`` and the ``loader``
        function ``(BackboneName, pretrained, device) -> LoadedBackbone``.
    loader : str
        The loader function's name in ``module`` (looked up at call time).
    sources : tuple of str
        Source prefixes this library reads besides its own model names.
    text : bool
        Whether its models embed text (``BackboneEmbedder.encode_text``).
    """

    name: str
    module: ModuleType = field(compare=False, repr=False)
    loader: str
    sources: tuple = ()
    text: bool = False

    def load(self, name, pretrained, device):
        return getattr(self.module, self.loader)(name, pretrained, device)

    def list_models(self):
        """The library's model names; ImportError when it is not installed."""
        return self.module.list_models()


# The order is the lookup order of a bare model name: a name both libraries
# know (convnext_tiny, ...) means torchvision; "open_clip:NAME" picks the other.
LIBRARIES = {
    library.name: library
    for library in (
        Library("torchvision", _torchvision, "load_torchvision"),
        Library(
            "open_clip",
            _open_clip,
            "load_open_clip",
            sources=("hf-hub", "local-dir"),
            text=True,
        ),
    )
}
#: Source prefix -> the library that reads it.
SOURCES = {source: lib.name for lib in LIBRARIES.values() for source in lib.sources}

_EXAMPLES = {"torchvision": "resnet50", "open_clip": "ViT-B-32"}
_SOURCE_EXAMPLES = {"hf-hub": "hf-hub:org/repo", "local-dir": "local-dir:/path/to/dir"}


def library_names():
    """The library names a string ``backbone`` may take, in lookup order."""
    return tuple(LIBRARIES)


@dataclass(frozen=True)
class BackboneName:
    """A parsed backbone name.

    Attributes
    ----------
    library : str
        ``"open_clip"``, ``"torchvision"`` or ``"custom"`` (a user module).
    model : str or None
        The model without any prefix: ``"ViT-B-32"``, ``"resnet50"``, the
        repository ``"org/repo"`` of an ``hf-hub`` source, the folder of a
        ``local-dir`` source (as written; loaders expand ``~``). None for
        ``custom``.
    source : {None, "hf-hub", "local-dir"}
        Where a model outside the library's own list comes from.
    """

    library: str
    model: Optional[str] = None
    source: Optional[str] = None

    @property
    def model_name(self):
        """The embedder's ``model_name`` (and open_clip's): source prefix + model."""
        if self.model is None:
            return None
        return f"{self.source}:{self.model}" if self.source else self.model

    @property
    def is_custom(self):
        return self.library == CUSTOM

    @property
    def encodes_text(self):
        """Whether the backbone embeds text prompts (CLIP)."""
        library = LIBRARIES.get(self.library)
        return library is not None and library.text

    def embedder_params(self):
        """``{"backbone": ..., "model_name": ...}`` for ``BackboneEmbedder``."""
        if self.is_custom:
            raise ValueError("a custom backbone is the module itself, not a name.")
        return {"backbone": self.library, "model_name": self.model_name}

    def __str__(self):
        """The one-string form; ``parse_backbone(str(name)) == name``."""
        return CUSTOM if self.is_custom else f"{self.library}:{self.model_name}"


def _show(argument, value):
    """``backbone='x'`` for a parameter, ``--backbone x`` for a command option."""
    return (
        f"{argument} {value}" if argument.startswith("-") else f"{argument}={value!r}"
    )


def _known_prefixes():
    return ", ".join(f"'{prefix}:'" for prefix in (*LIBRARIES, *SOURCES))


def _split_model(text, library, shown, *, written=None):
    """Read ``[source:]model`` for ``library``; ``shown`` names the input.

    ``written`` is None for the embedder's parameters (``model_name=text``)
    and, for a one-string name, the library prefix as the user wrote it
    (``"open_clip:"`` or ``""``), so that fixes are spelled like the input.
    """

    def fix(library_name, model_name):
        if written is None:
            return f"pass backbone={library_name!r}, model_name={model_name!r}"
        return f"write '{library_name}:{model_name}'"

    prefix, sep, rest = text.partition(":")
    if sep and prefix in LIBRARIES:
        raise ValueError(
            f"{shown}: {prefix!r} is a library name, not a source of {library.name} "
            f"models; {fix(prefix, rest)}."
        )
    if sep and prefix in SOURCES and prefix not in library.sources:
        owner = SOURCES[prefix]
        raise ValueError(
            f"{shown}: {library.name} models have no '{prefix}:' source (it is "
            f"{owner}'s); {fix(owner, text)}."
        )
    if sep and prefix not in SOURCES:
        raise ValueError(
            f"{shown}: unknown prefix '{prefix}:'; known prefixes are "
            f"{_known_prefixes()}. Model names have no ':'."
        )
    source, model = (prefix, rest) if sep else (None, text)
    if not model.strip():
        example = _SOURCE_EXAMPLES.get(source) or _EXAMPLES[library.name]
        raise ValueError(f"{shown} names no model; e.g. '{written or ''}{example}'.")
    return BackboneName(library.name, model, source)


def _look_up(model, shown):
    """The library whose model list has ``model`` (registry order)."""
    missing = []
    for library in LIBRARIES.values():
        try:
            names = library.list_models()
        except ImportError:
            missing.append(library.name)
            continue
        if model in names:
            return library
    examples = ", ".join(f"'{name}:{ex}'" for name, ex in _EXAMPLES.items())
    sources = ", ".join(f"'{ex}'" for ex in _SOURCE_EXAMPLES.values())
    searched = [name for name in LIBRARIES if name not in missing]
    message = (
        f"{shown} is not a model name of {' or '.join(searched) or 'any library'}. "
        f"Check the spelling, or name the library ({examples}) or a source "
        f"({sources})."
    )
    if missing:
        message += f" Not installed, so not searched: {', '.join(missing)}."
    raise ValueError(message)


def parse_backbone(backbone, model_name=None, *, library=None, argument="backbone"):
    """Read a backbone name; the one parser of backbone names.

    Parameters
    ----------
    backbone : str, torch.nn.Module or callable
        A library name (then ``model_name`` names the model), a one-string
        name (``"library:[source:]model"``, ``"source:model"`` or a bare
        model name), or a user module / callable (library ``"custom"``).
    model_name : str or None, default=None
        With a library name in ``backbone``: the model, optionally with a
        source prefix (``"hf-hub:org/repo"``, ``"local-dir:/path"``).
    library : str or None, default=None
        The library of a bare one-string model name (e.g. chosen from which
        weights option was given). None looks the name up in the libraries'
        model lists, torchvision first; prefixed names ignore it.
    argument : str, default="backbone"
        What to call ``backbone`` in error messages (``"--backbone"`` on the
        command line).

    Returns
    -------
    name : BackboneName

    Raises
    ------
    ValueError
        For a name that cannot be read (unknown prefix, a source of another
        library, no model, a bare name no installed library knows); the
        message names the argument and the way to write it.
    TypeError
        For a ``backbone`` that is neither a string nor callable.
    """
    if not isinstance(backbone, str):
        if not callable(backbone):
            raise TypeError(
                f"{argument} must be a backbone name (str), a torch.nn.Module or a "
                f"callable; got {type(backbone).__name__}."
            )
        return BackboneName(CUSTOM)
    if library is not None and library not in LIBRARIES:
        raise ValueError(
            f"library={library!r} is not a backbone library; use one of "
            f"{list(LIBRARIES)} or None."
        )
    if model_name is not None:
        if backbone not in LIBRARIES:
            raise ValueError(
                f"{_show(argument, backbone)} must be one of {list(LIBRARIES)} when "
                f"model_name is given (got model_name={model_name!r}), or a "
                "torch.nn.Module / callable."
            )
        shown = _show("model_name", model_name)
        return _split_model(model_name, LIBRARIES[backbone], shown)
    shown = _show(argument, backbone)
    prefix, sep, rest = backbone.partition(":")
    if sep and prefix in LIBRARIES:
        return _split_model(rest, LIBRARIES[prefix], shown, written=f"{prefix}:")
    if sep and prefix in SOURCES:
        return _split_model(backbone, LIBRARIES[SOURCES[prefix]], shown, written="")
    if sep:
        raise ValueError(
            f"{shown}: unknown prefix '{prefix}:'; known prefixes are "
            f"{_known_prefixes()}."
        )
    if not backbone.strip():
        raise ValueError(f"{shown} is empty; e.g. 'open_clip:ViT-B-32'.")
    if backbone in LIBRARIES:
        example = _EXAMPLES[backbone]
        raise ValueError(
            f"{shown} names a library but no model; write '{backbone}:{example}' "
            f"(or pass model_name={example!r})."
        )
    chosen = LIBRARIES[library] if library is not None else _look_up(backbone, shown)
    return BackboneName(chosen.name, backbone)


def load_backbone(name, pretrained, device, *, module=None):
    """Load the backbone ``name`` names (``module`` for a custom one).

    Returns a :class:`~skhsfm.embedding._loading.LoadedBackbone`.
    """
    if name.is_custom:
        return _custom.prepare_custom(module, device)
    return LIBRARIES[name.library].load(name, pretrained, device)
