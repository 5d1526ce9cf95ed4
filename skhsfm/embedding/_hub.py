"""Cache-first weight fetching and offline handling for the backbone loaders.

A copy of the weights already on disk is used without touching the network; a
missing one fails within about two seconds when its host cannot be reached
(instead of huggingface_hub's retry loop, which takes ~45 s), and at once when
offline mode is on (``HF_HUB_OFFLINE``), with a one-paragraph message that
says how to pass local weights and no chained hub traceback (in a grid search
whose fits all fail, that message is the one reason shown). Only the standard
library is imported here; huggingface_hub is imported inside the functions.
"""

import contextlib
import os
import socket
import threading
import time
import urllib.parse
import urllib.request

__all__ = [
    "HUB_PROBE_TIMEOUT",
    "UNREACHABLE_RETRY",
    "ensure_downloadable",
    "fetch_cache_first",
    "host_reachable",
    "hub_offline",
    "offline_requested",
]

#: Seconds allowed for the "is the weights host reachable?" probe.
HUB_PROBE_TIMEOUT = 2.0

#: Seconds during which a host found unreachable is not probed again: the
#: fits of a search that all need the same missing weights fail at once after
#: the first, instead of waiting for a probe each.
UNREACHABLE_RETRY = 60.0

_OFFLINE_LOCK = threading.Lock()
# (host, port) -> time.monotonic() of its last failed probe
_UNREACHABLE = {}


def _truthy(value):
    return str(value).strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_requested():
    """Whether the user asked for offline mode (``HF_HUB_OFFLINE`` or equivalent)."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE", "")):
        return True
    if _truthy(os.environ.get("TRANSFORMERS_OFFLINE", "")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


@contextlib.contextmanager
def hub_offline():
    """Make huggingface_hub resolve files from its cache only, for this block.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once at import time into
    ``constants.HF_HUB_OFFLINE`` and checks that flag before each request, so
    setting the environment variable now would have no effect.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    with _OFFLINE_LOCK:
        previous = getattr(constants, "HF_HUB_OFFLINE", False)
        constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            constants.HF_HUB_OFFLINE = previous


def host_reachable(url, timeout=HUB_PROBE_TIMEOUT):
    """Whether a TCP connection to ``url``'s host (or its proxy) opens in time.

    Name resolution has no timeout of its own, so the probe runs in a daemon
    thread and is abandoned after ``timeout`` seconds. A host that failed the
    probe is reported unreachable without a new probe for
    :data:`UNREACHABLE_RETRY` seconds.
    """
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme or "https")
    if proxy and host and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlparse(proxy if "//" in proxy else f"//{proxy}")
        host, port = proxy_url.hostname, proxy_url.port or 80
    if not host:
        return False
    failed_at = _UNREACHABLE.get((host, port))
    if failed_at is not None and time.monotonic() - failed_at < UNREACHABLE_RETRY:
        return False
    result = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    reachable = bool(result and result[0])
    if reachable:
        _UNREACHABLE.pop((host, port), None)
    else:
        _UNREACHABLE[(host, port)] = time.monotonic()
    return reachable


def _hub_endpoint():
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        return "https://huggingface.co"
    return getattr(constants, "ENDPOINT", "https://huggingface.co")


def fetch_cache_first(fetch, *, describe, fix, url=None):
    """Run ``fetch`` from the local cache only; go online only if that can work.

    Parameters
    ----------
    fetch : callable
        Downloads (or finds in the cache) the files; huggingface_hub based.
    describe : str
        What is fetched, for error messages ("open_clip weights 'ViT-B-32' ...").
    fix : str
        The actionable part of the error message.
    url : str, optional
        The host to probe; the Hugging Face endpoint by default.
    """
    try:
        with hub_offline():
            return fetch()
    except Exception:  # not cached (or the cache copy is unusable)
        pass
    url = url or _hub_endpoint()
    # ``from None``: the cache miss's own traceback (huggingface_hub's "cannot
    # find the requested files" chain, 40 lines per failed fit in a search)
    # says nothing this message does not; the reason comes alone.
    if offline_requested():
        raise RuntimeError(
            f"{describe} are not in the local cache and offline mode is on "
            f"(HF_HUB_OFFLINE is set), so they cannot be downloaded. {fix}"
        ) from None
    if not host_reachable(url):
        raise RuntimeError(
            f"{describe} are not in the local cache and {url} cannot be reached "
            f"(no network access?). {fix}"
        ) from None
    try:
        return fetch()
    except Exception as exc:
        raise RuntimeError(f"Downloading {describe} failed: {exc}. {fix}") from exc


def ensure_downloadable(url, cache_dir, *, describe, fix):
    """Fail fast when ``url``'s file is not in ``cache_dir`` and cannot be fetched.

    For downloaders without a cache-only mode (torch hub): the file is looked
    up where the downloader would put it, and the host is probed only when it
    is missing.
    """
    filename = os.path.basename(urllib.parse.urlparse(url).path)
    if os.path.isfile(os.path.join(cache_dir, filename)):
        return
    if offline_requested():
        raise RuntimeError(
            f"{describe} are not in the local cache ({cache_dir}) and offline mode "
            f"is on (HF_HUB_OFFLINE is set). {fix}"
        )
    if not host_reachable(url):
        raise RuntimeError(
            f"{describe} are not in the local cache ({cache_dir}) and "
            f"{url} cannot be reached (no network access?). {fix}"
        )
