"""Read the chain through ``m`` JSON-RPC endpoints and believe only what ``k`` of them agree on.

One JSON-RPC node is trusted for everything it says the contract holds: a lying node can admit a
revoked certificate or pin a rogue one (docs/security.md, section Identities). State proofs
(``eth_getProof`` against a trusted block hash) would need a trusted source of block headers (a
light client); :class:`QuorumProvider` is the practical bound instead, a web3 provider over several
endpoints, ideally run by different operators:

* **reads** (``eth_call``, ``eth_getCode``, ``eth_getLogs``, ``eth_getBlockByNumber``, ...) are
  asked of every endpoint *at one pinned block*: every endpoint reports its head
  (``eth_blockNumber``); the pin is the ``k``-th highest head (at least ``k`` endpoints have that
  block). Each endpoint then answers the block's hash and the request at that block; the answer is
  returned only when at least ``k`` endpoints gave the identical ``(block hash, answer)``.
  Otherwise :class:`~ppbfl.chain.errors.ChainDisagreementError` names the method and every endpoint with what it said:
  a refusal, never a guess. An endpoint that is down or slower than the timeout counts as not
  agreeing. ``eth_blockNumber`` answers the pin itself.
* **rollback**: an endpoint that reports an old head would drag the pin (with ``k = m``, the lowest
  head) back to a block before, say, a revocation, where every honest node still answers the old
  state. The pin must therefore be within ``max_lag`` blocks of the ``(m - k + 1)``-th highest head
  (an endpoint that did not answer counts as arbitrarily high), else the read is refused. With
  fewer than ``k`` liars this reference is at least the head of the lowest honest endpoint that
  answered, so an answer is never older than that minus ``max_lag`` blocks.
* transaction lookups (``eth_getTransactionReceipt``, ``eth_getTransactionByHash``) and
  ``eth_chainId`` are not tied to a block: ``k`` identical answers are needed; a receipt that fewer
  than ``k`` endpoints hold yet is answered "not found" (``null``; the caller polls again) when some
  endpoint answered ``null``.
* ``eth_sendRawTransaction`` is sent to every endpoint and succeeds when any accepts it (the
  transaction is signed by its party: an endpoint can drop it, never alter it); its hash is
  computed here. The connection holds no account (``eth_accounts`` is ``[]``): anything a node
  would have to sign raises :class:`~ppbfl.chain.errors.MissingAccountError`. Other methods
  (``anvil_*``, ``debug_*``, fees) are refused (:class:`~ppbfl.chain.errors.ChainError`).

Safety and liveness: an answer is false only if ``k`` endpoints give the same false answer at the
same block, so with ``k = m`` (the default) one honest endpoint suffices for safety, and any one
endpoint that lies, lags by more than ``max_lag`` blocks or is down stops the reads (they are
refused, never wrong). ``k < m`` keeps reading with ``m - k`` endpoints down or lying, at the price
that ``k`` colluding endpoints agree on any lie. Two endpoints are only two *independent* witnesses
when different operators run them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import urlsplit

from eth_utils import keccak
from hexbytes import HexBytes
from web3.providers.base import JSONBaseProvider
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from ppbfl.chain.errors import ChainDisagreementError, ChainError, MissingAccountError
from ppbfl.errors import ConfigError

__all__ = ["DEFAULT_MAX_LAG", "QuorumProvider", "endpoint_urls"]

#: blocks the pinned block may lag behind the reference head (see the module docstring)
DEFAULT_MAX_LAG = 4

#: read methods with a block parameter, and its position (``latest`` / ``pending`` / missing: the pin)
_PINNED = {
    "eth_call": 1, "eth_getCode": 1, "eth_getBalance": 1, "eth_getTransactionCount": 1, "eth_getStorageAt": 2,
    "eth_getBlockByNumber": 0, "eth_getProof": 2, "eth_estimateGas": 1, "eth_createAccessList": 1,
}
#: read methods not tied to a block: ``k`` identical answers
_UNPINNED = frozenset({"eth_chainId", "net_version", "eth_getTransactionReceipt", "eth_getTransactionByHash", "eth_getBlockByHash"})
#: lookups whose ``null`` means "not known (yet)": without ``k`` agreeing, a ``null`` somewhere is the answer
_NULL_IF_UNSETTLED = frozenset({"eth_getTransactionReceipt", "eth_getTransactionByHash"})
#: methods the node would have to sign for
_SIGNING = frozenset({
    "eth_sendTransaction", "eth_sign", "eth_signTransaction", "eth_signTypedData", "eth_signTypedData_v3",
    "eth_signTypedData_v4", "personal_sign", "personal_sendTransaction",
})
_TO_PIN = ("latest", "pending")


def endpoint_urls(url: str | Sequence[str]) -> list[str]:
    """The endpoints of ``url``: one URL, a comma-separated list (``--chain URL1,URL2``) or a
    sequence of URLs, stripped. A single URL is returned as given (checked where it is used).

    Raises:
        ConfigError: ``chain``: an empty list, an empty entry, a URL that is not ``http(s)://`` with
            a host (in a list of several), or the same URL twice.
    """
    parts = [u.strip() for u in url.split(",")] if isinstance(url, str) else [str(u).strip() for u in url]
    if not parts or (len(parts) == 1 and not parts[0]):
        raise ConfigError("chain", "no JSON-RPC endpoint given")
    if len(parts) == 1:
        return parts
    seen: set[str] = set()
    for part in parts:
        split = urlsplit(part)
        if split.scheme not in ("http", "https") or not split.hostname:
            raise ConfigError("chain", f"endpoint {part[:60]!r}: expected an http:// or https:// JSON-RPC URL")
        key = part.rstrip("/").lower()
        if key in seen:
            raise ConfigError("chain", f"endpoint {_name(part, parts.index(part))} is given twice (two answers from one node are one witness)")
        seen.add(key)
    return parts


def _name(url: str, index: int) -> str:
    split = urlsplit(url)
    host = split.hostname or "?"
    port = f":{split.port}" if split.port else ""
    return f"#{index + 1} {split.scheme}://{host}{port}"


def _key(response: Any) -> str:
    """What two endpoints must give identically: the result, or the error (a revert's data)."""
    if not isinstance(response, dict) or ("result" not in response and "error" not in response):
        raise ChainError(f"not a JSON-RPC response: {str(response)[:80]}")
    if "error" in response:
        return "error:" + json.dumps(response["error"], sort_keys=True, separators=(",", ":"))
    return "result:" + json.dumps(response["result"], sort_keys=True, separators=(",", ":"))


def _short(key: str) -> str:
    kind, _, value = key.partition(":")
    return f"{kind} {value[:26]}{'...' if len(value) > 26 else ''} [{keccak(text=key).hex()[:8]}]"


class QuorumProvider(JSONBaseProvider):
    """A web3 provider over ``urls`` (m >= 2 HTTP(S) JSON-RPC endpoints) that returns an answer only
    when ``agree`` (k, default m) of them gave it identically at one pinned block (module docstring).

    Args:
        urls: the endpoints (``http://`` or ``https://``, no duplicates).
        agree: k, 1 <= k <= m (default m).
        timeout_s: seconds each endpoint has per request (> 0); one that does not answer in time
            counts as not agreeing.
        max_lag: blocks the pinned block may lag behind the reference head (>= 0).

    Raises:
        ConfigError: a URL, ``agree``, ``timeout_s`` or ``max_lag`` is out of range (names it).
    """

    def __init__(self, urls: Sequence[str], agree: int | None = None, *, timeout_s: float = 10.0, max_lag: int = DEFAULT_MAX_LAG) -> None:
        super().__init__()
        self.urls = endpoint_urls(list(urls))
        m = len(self.urls)
        if m < 2:
            raise ConfigError("chain", f"a quorum needs at least 2 endpoints, got {m}")
        agree = m if agree is None else agree
        if isinstance(agree, bool) or not isinstance(agree, int) or not 1 <= agree <= m:
            raise ConfigError("chain_agree", f"must be an int with 1 <= k <= {m} (the endpoints given), got {agree!r}")
        if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 0:
            raise ConfigError("max_lag", f"must be an int >= 0, got {max_lag!r}")
        if not (isinstance(timeout_s, (int, float)) and 0 < timeout_s < float("inf")):
            raise ConfigError("timeout_s", f"must be a positive finite number, got {timeout_s!r}")
        self.agree, self.max_lag, self.timeout_s = agree, max_lag, float(timeout_s)
        self.names = [_name(u, i) for i, u in enumerate(self.urls)]
        self._endpoints = [
            HTTPProvider(u, request_kwargs={"timeout": self.timeout_s}, exception_retry_configuration=None) for u in self.urls
        ]
        self._pool = ThreadPoolExecutor(max_workers=8 * m, thread_name_prefix="ppbfl-quorum")
        self._ids = iter(range(1, 2**62))
        self._ids_lock = threading.Lock()

    def __str__(self) -> str:
        return f"quorum of {self.agree} of {len(self.urls)} JSON-RPC endpoints"

    def close(self) -> None:
        """Stop the worker threads (requests in flight finish; later requests fail)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def is_connected(self, show_traceback: bool = False) -> bool:
        """Whether ``k`` endpoints agree on the chain id."""
        try:
            self.make_request(RPCEndpoint("eth_chainId"), [])
        except ChainError:
            if show_traceback:
                raise
            return False
        return True

    # ------------------------------------------------------------------ requests

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """Answer ``method(params)`` as the module docstring says.

        Raises:
            ChainDisagreementError: fewer than ``k`` endpoints agree (or answer);
            MissingAccountError: the method needs the node to sign;
            ChainError: the method is not available through a quorum.
        """
        args = list(params or [])
        if method in _SIGNING:
            sender = args[0].get("from", "(none)") if args and isinstance(args[0], dict) else "(none)"
            raise MissingAccountError(str(sender), f"{method}: a quorum of endpoints signs nothing (a read-only connection); sign it with the party's own key")
        if method == "eth_accounts":
            return self._answer([])
        if method == "web3_clientVersion":
            return self._answer(f"ppbfl-quorum/{self.agree}-of-{len(self.urls)}")
        if method == "eth_sendRawTransaction":
            return self._broadcast(args)
        if method == "eth_blockNumber":
            return self._answer(hex(self._pin(method)))
        if method in _PINNED or method == "eth_getLogs":
            pin = self._pin(method)
            return self._agreed(method, self._at(method, args, pin), pin)
        if method in _UNPINNED:
            return self._agreed(method, args, None)
        raise ChainError(f"{method}: not available through a quorum of endpoints (reads, receipts and signed transactions only)")

    def _answer(self, result: Any) -> RPCResponse:
        with self._ids_lock:
            ident = next(self._ids)
        response: RPCResponse = {"jsonrpc": "2.0", "id": ident, "result": result}
        return response

    def _ask(self, index: int, method: str, params: list[Any]) -> RPCResponse:
        response = self._endpoints[index].make_request(RPCEndpoint(method), params)
        _key(response)  # a malformed answer is a failure of this endpoint
        return response

    def _each(self, call: Callable[[int], Any]) -> list[Future[Any]]:
        return [self._pool.submit(call, i) for i in range(len(self.urls))]

    def _wait(self, futures: list[Future[Any]]) -> list[tuple[Any, str | None]]:
        """Each future's ``(value, None)`` or ``(None, why it gave none)``, waiting at most the timeout."""
        done, _ = wait(futures, timeout=self.timeout_s + 1.0)
        outcomes: list[tuple[Any, str | None]] = []
        for future in futures:
            if future not in done:
                outcomes.append((None, f"no answer in {self.timeout_s:g} s"))
                continue
            try:
                outcomes.append((future.result(), None))
            except Exception as error:  # down, refused, malformed: does not agree
                outcomes.append((None, f"no answer ({type(error).__name__}: {str(error)[:80]})"))
        return outcomes

    def _pin(self, method: str) -> int:
        """The block every read of this request is asked at (module docstring)."""

        def head(i: int) -> int:
            response = self._ask(i, "eth_blockNumber", [])
            if "error" in response:
                raise ChainError(f"eth_blockNumber refused: {response['error']}")
            return int(response["result"], 16)

        outcomes = self._wait(self._each(head))
        heads = sorted((h for h, why in outcomes if why is None), reverse=True)
        said = {self.names[i]: (f"head {h}" if why is None else why) for i, (h, why) in enumerate(outcomes)}
        m, k = len(self.urls), self.agree
        if len(heads) < k:
            raise ChainDisagreementError(method, k, said, None, f"only {len(heads)} of {m} endpoints report a head")
        pin = heads[k - 1]
        reference = heads[len(heads) - k]  # the (m-k+1)-th highest head, one missing counted as the highest
        if pin < reference - self.max_lag:
            raise ChainDisagreementError(
                method, k, said, None,
                f"the block {k} endpoints have ({pin}) is more than {self.max_lag} blocks behind head {reference} (an endpoint lags or rolls back)",
            )
        return pin

    @staticmethod
    def _at(method: str, args: list[Any], pin: int) -> list[Any]:
        """``args`` with the block ``latest`` / ``pending`` / missing replaced by ``pin``."""
        args = list(args)
        block = hex(pin)
        if method == "eth_getLogs":
            query = dict(args[0]) if args and isinstance(args[0], dict) else {}
            if "blockHash" not in query:
                for bound in ("fromBlock", "toBlock"):
                    if query.get(bound, "latest") in _TO_PIN:
                        query[bound] = block
            return [query, *args[1:]]
        position = _PINNED[method]
        if len(args) == position:
            args.append(block)
        elif len(args) > position and args[position] in _TO_PIN:
            args[position] = block
        return args

    def _agreed(self, method: str, args: list[Any], pin: int | None) -> RPCResponse:
        """The answer ``k`` endpoints gave identically (with the same hash of block ``pin``)."""

        def ask(i: int) -> tuple[str, RPCResponse]:
            where = ""
            if pin is not None:
                block = self._ask(i, "eth_getBlockByNumber", [hex(pin), False])
                if "error" in block or not isinstance(block["result"], dict):
                    raise ChainError(f"block {pin} not served")
                where = str(block["result"].get("hash"))
            response = self._ask(i, method, args)
            return f"{where}|{_key(response)}", response

        futures = self._each(ask)
        index = {future: i for i, future in enumerate(futures)}
        groups: dict[str, list[int]] = {}
        said: dict[int, str] = {}
        try:
            for future in as_completed(futures, timeout=self.timeout_s + 1.0):
                i = index[future]
                try:
                    key, response = future.result()
                except Exception as error:  # down, refused, block not served: does not agree
                    said[i] = f"no answer ({type(error).__name__}: {str(error)[:80]})"
                    continue
                groups.setdefault(key, []).append(i)
                if len(groups[key]) >= self.agree:
                    return self._answer(response["result"]) if "result" in response else response  # an agreed error: a revert
        except FutureTimeout:
            pass
        for i in index.values():
            if i not in said and not any(i in members for members in groups.values()):
                said[i] = f"no answer in {self.timeout_s:g} s"
        if method in _NULL_IF_UNSETTLED and any(key.endswith("|result:null") for key in groups):
            return self._answer(None)
        for key, members in groups.items():
            where, _, answer = key.partition("|")
            label = _short(answer) + (f" in block {where[:12]}..." if where else "")
            for i in members:
                said[i] = label
        answers = {self.names[i]: said[i] for i in sorted(said)}
        largest = max((len(members) for members in groups.values()), default=0)
        raise ChainDisagreementError(method, self.agree, answers, pin, f"at most {largest} of {len(self.urls)} endpoints gave the same answer")

    def _broadcast(self, args: list[Any]) -> RPCResponse:
        """Send a signed transaction to every endpoint; its hash when any accepted it."""
        if not args or not isinstance(args[0], (str, bytes)):
            raise ChainError("eth_sendRawTransaction: no raw transaction given")
        raw = HexBytes(args[0])
        outcomes = self._wait(self._each(lambda i: self._ask(i, "eth_sendRawTransaction", [raw.to_0x_hex()])))
        if any(why is None and "result" in response for response, why in outcomes):
            return self._answer("0x" + keccak(raw).hex())
        refused = [response for response, why in outcomes if why is None]
        if refused:  # every answering endpoint refused it: its error (a revert's data) as the node gave it
            response: RPCResponse = refused[0]
            return response
        answers = {self.names[i]: why or "" for i, (_, why) in enumerate(outcomes)}
        raise ChainDisagreementError("eth_sendRawTransaction", 1, answers, None, "no endpoint took the transaction")
