"""Tests for the backbone registry and its one name parser (skhsfm.embedding._registry).

Parsing is string work (no library is imported) except for a bare model name
without ``library=``, which is looked up in the libraries' model lists.
"""

import numpy as np
import pytest

from skhsfm._sklearn_compat import InvalidParameterError, StrOptions
from skhsfm.embedding import BackboneEmbedder, _open_clip, _registry, _torchvision
from skhsfm.embedding._registry import (
    LIBRARIES,
    SOURCES,
    BackboneName,
    library_names,
    load_backbone,
    parse_backbone,
)

# ------------------------------------------------------------ accepted forms


@pytest.mark.parametrize(
    "args, expected",
    [
        # The embedder's parameters: a library and a model_name.
        (("open_clip", "ViT-B-32"), ("open_clip", "ViT-B-32", None)),
        (("open_clip", "hf-hub:org/repo"), ("open_clip", "org/repo", "hf-hub")),
        (("open_clip", "local-dir:/w/model"), ("open_clip", "/w/model", "local-dir")),
        (("open_clip", "local-dir:~/m"), ("open_clip", "~/m", "local-dir")),
        (("torchvision", "resnet50"), ("torchvision", "resnet50", None)),
        # One string, as on the command line.
        (("open_clip:RN50",), ("open_clip", "RN50", None)),
        (("open_clip:hf-hub:org/repo",), ("open_clip", "org/repo", "hf-hub")),
        (("open_clip:local-dir:/w",), ("open_clip", "/w", "local-dir")),
        (("torchvision:resnet18",), ("torchvision", "resnet18", None)),
        (("hf-hub:org/repo",), ("open_clip", "org/repo", "hf-hub")),
        (("local-dir:C:/models/clip",), ("open_clip", "C:/models/clip", "local-dir")),
    ],
)
def test_accepted_forms(args, expected):
    name = parse_backbone(*args)
    assert (name.library, name.model, name.source) == expected
    # One value, whichever way it was written: the one-string form and the
    # embedder's parameters read back to the same name.
    assert parse_backbone(str(name)) == name
    assert parse_backbone(**name.embedder_params()) == name
    assert name.model_name == (
        f"{name.source}:{name.model}" if name.source else name.model
    )


def test_custom_module_or_callable():
    torch = pytest.importorskip("torch")
    for backbone in (torch.nn.Identity(), lambda x: x):
        name = parse_backbone(backbone)
        assert name == BackboneName("custom") and name.is_custom
        assert name.model_name is None and str(name) == "custom"
        assert not name.encodes_text
        # model_name means nothing next to a module (the embedder ignores it).
        assert parse_backbone(backbone, "ViT-B-32") == name
    with pytest.raises(ValueError, match="a custom backbone is the module"):
        name.embedder_params()


def test_bare_names_take_the_given_library_without_imports():
    # Which weights option the command line got decides; nothing is looked up.
    assert parse_backbone("anything", library="torchvision") == BackboneName(
        "torchvision", "anything"
    )
    assert parse_backbone("anything", library="open_clip").library == "open_clip"
    # A prefix wins over the hint (the caller then reports the mismatch).
    assert parse_backbone("torchvision:resnet18", library="open_clip").library == (
        "torchvision"
    )
    assert parse_backbone("hf-hub:org/repo", library="torchvision").library == (
        "open_clip"
    )


def test_bare_names_are_looked_up(tiny_clip):
    pytest.importorskip("torchvision")
    assert parse_backbone("resnet18") == BackboneName("torchvision", "resnet18")
    assert parse_backbone("ViT-B-32") == BackboneName("open_clip", "ViT-B-32")
    assert parse_backbone(tiny_clip) == BackboneName("open_clip", tiny_clip)
    # A name both libraries build means torchvision (registry order); the
    # prefix picks open_clip.
    both = set(_torchvision.list_models()) & set(_open_clip.list_models())
    for model in sorted(both):
        assert parse_backbone(model).library == "torchvision"
        assert parse_backbone(f"open_clip:{model}").library == "open_clip"


def test_text_support_comes_from_the_registry():
    assert parse_backbone("open_clip", "ViT-B-32").encodes_text
    assert not parse_backbone("torchvision", "resnet50").encodes_text


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "args, error, message",
    [
        (
            ("torchvision", "local-dir:/w"),
            ValueError,
            r"model_name='local-dir:/w': torchvision models have no 'local-dir:' "
            r"source .*pass backbone='open_clip', model_name='local-dir:/w'",
        ),
        (
            ("open_clip", "torchvision:resnet50"),
            ValueError,
            r"model_name='torchvision:resnet50': 'torchvision' is a library name.*"
            r"pass backbone='torchvision', model_name='resnet50'",
        ),
        (
            ("open_clip", "timm:resnet50"),
            ValueError,
            r"model_name='timm:resnet50': unknown prefix 'timm:'; known prefixes "
            r"are 'torchvision:', 'open_clip:', 'hf-hub:', 'local-dir:'",
        ),
        (("open_clip", ""), ValueError, r"model_name='' names no model; e\.g\. 'ViT"),
        (
            ("open_clip", "hf-hub:"),
            ValueError,
            r"model_name='hf-hub:' names no model; e\.g\. 'hf-hub:org/repo'",
        ),
        (
            ("timm", "resnet50"),
            ValueError,
            r"backbone='timm' must be one of \['torchvision', 'open_clip'\]",
        ),
        (
            ("open_clip",),
            ValueError,
            r"backbone='open_clip' names a library but no model; write "
            r"'open_clip:ViT-B-32'",
        ),
        (("",), ValueError, r"backbone='' is empty; e\.g\. 'open_clip:ViT-B-32'"),
        (
            ("timm:resnet50",),
            ValueError,
            r"backbone='timm:resnet50': unknown prefix 'timm:'",
        ),
        (
            ("torchvision:local-dir:/w",),
            ValueError,
            r"torchvision models have no 'local-dir:' source \(it is open_clip's\); "
            r"write 'open_clip:local-dir:/w'",
        ),
        (
            ("open_clip:",),
            ValueError,
            r"backbone='open_clip:' names no model; e\.g\. 'open_clip:ViT-B-32'",
        ),
        (
            ("open_clip:torchvision:resnet18",),
            ValueError,
            r"'torchvision' is a library name.*write 'torchvision:resnet18'",
        ),
        ((3,), TypeError, r"backbone must be a backbone name \(str\).*got int"),
    ],
)
def test_bad_names_say_what_to_write(args, error, message):
    with pytest.raises(error, match=message):
        parse_backbone(*args)


def test_unknown_bare_name(monkeypatch):
    pytest.importorskip("torchvision")
    pytest.importorskip("open_clip")
    with pytest.raises(ValueError) as info:
        parse_backbone("no-such-model")
    message = str(info.value)
    assert message.startswith(
        "backbone='no-such-model' is not a model name of torchvision or open_clip."
    )
    assert "'torchvision:resnet50', 'open_clip:ViT-B-32'" in message
    assert "'hf-hub:org/repo'" in message and "'local-dir:" in message

    # The command line names its option; a missing library is said, not hidden.
    def not_installed():
        raise ImportError(_open_clip.OPEN_CLIP_MISSING)

    monkeypatch.setattr(_open_clip, "list_models", not_installed)
    with pytest.raises(ValueError) as info:
        parse_backbone("no-such-model", argument="--backbone")
    message = str(info.value)
    assert message.startswith("--backbone no-such-model is not a model name of ")
    assert "Not installed, so not searched: open_clip." in message


def test_bad_library_hint():
    with pytest.raises(ValueError, match=r"library='timm' is not a backbone library"):
        parse_backbone("resnet50", library="timm")


# -------------------------------------------- the embedder's use of the parser


def test_backbone_constraint_comes_from_the_registry():
    options = BackboneEmbedder._parameter_constraints["backbone"][0]
    assert isinstance(options, StrOptions)
    assert options.options == set(library_names()) == set(LIBRARIES)
    assert set(SOURCES) == {"hf-hub", "local-dir"}
    for library in library_names():  # every allowed value parses with a model
        assert parse_backbone(library, "some-model").library == library
    with pytest.raises(InvalidParameterError, match="'backbone' parameter") as info:
        BackboneEmbedder("timm").fit()
    assert all(repr(library) in str(info.value) for library in LIBRARIES)


def test_embedder_reports_parse_errors_at_transform():
    embedder = BackboneEmbedder("torchvision", model_name="local-dir:/w")
    embedder.fit()  # fit checks parameter types only, as before
    with pytest.raises(ValueError, match="pass backbone='open_clip'"):
        embedder.transform(np.zeros((1, 8, 8, 3), np.uint8))


# ------------------------------------------- agreement with what loaders accept


def test_loaders_and_lookup_share_one_model_list(tiny_clip):
    pytest.importorskip("torchvision")
    # The lookup asks each library's loader module for its list: the same list
    # the loader checks a name against.
    assert LIBRARIES["torchvision"].list_models() == _torchvision.list_models()
    assert LIBRARIES["open_clip"].list_models() == _open_clip.list_models()
    assert tiny_clip in _open_clip.list_models()


def test_parsed_names_load(tiny_clip):
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    cpu = torch.device("cpu")
    for text, library, dim in [
        ("resnet18", "torchvision", 512),
        (tiny_clip, "open_clip", 32),
    ]:
        name = parse_backbone(text)
        loaded = load_backbone(name, None, cpu)
        assert (loaded.library, loaded.dim) == (library, dim)
    module = torch.nn.Flatten()
    loaded = load_backbone(parse_backbone(module), None, cpu, module=module)
    assert loaded.library == "custom" and loaded.model is module


def test_loaders_read_the_parsed_source(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    # hf-hub: the hub handling answers (not "is not an open_clip model").
    with pytest.raises(RuntimeError, match=r"open_clip files for 'hf-hub:org/r"):
        load_backbone(parse_backbone("hf-hub:org/repo"), None, "cpu")
    # local-dir: the folder is checked.
    with pytest.raises(FileNotFoundError, match="local-dir:.*does not exist"):
        load_backbone(parse_backbone(f"local-dir:{tmp_path}/nope"), None, "cpu")


def test_loaders_reject_names_of_another_library():
    pytest.importorskip("torchvision")
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        load_backbone(BackboneName("torchvision", "ViT-B-32"), None, "cpu")
    with pytest.raises(ValueError, match="is not an open_clip model"):
        load_backbone(BackboneName("open_clip", "resnet18"), None, "cpu")


def test_loader_is_looked_up_when_called(monkeypatch):
    # So that tests (and the CLI's) can replace a loader by monkeypatching it.
    calls = []
    monkeypatch.setattr(
        _torchvision, "load_torchvision", lambda *args: calls.append(args) or "x"
    )
    name = BackboneName("torchvision", "resnet18")
    assert load_backbone(name, "DEFAULT", "cpu") == "x"
    assert calls == [(name, "DEFAULT", "cpu")]
    assert _registry.LIBRARIES["torchvision"].loader == "load_torchvision"
