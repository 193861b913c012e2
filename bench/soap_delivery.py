"""Benchmark: SOAP dossier deliveries per second, Edukoppeling 2W-be-S over mutual TLS.

Run: `.venv/bin/python bench/soap_delivery.py [--messages 1000] [--clients 2] [--batch 50]`

The reference mbo endpoint (`connectors.reference.mbo_soap`, threads in this process) receives;
`clients` processes (processes, not threads: signing, verification and parsing on both ends are
mostly Python and lxml work that holds the GIL) each run a `SoapDeliveryTransport` and deliver
their share of the messages in `send()` batches of `batch`. Every delivery is a real one: the
request signed by the hub and verified by the receiver (signature, certificate chain, OIN, TLS
client certificate, SOAPAction, dossier XSD), stored once, answered with a signed receipt that
the client verifies strictly (SignatureConfirmation, RelatesTo, receipt XSD). The payload is the
5 KB example dossier (tests/fixtures/xml/dossier.xml). One TLS connection per client (keep-alive).

Timing starts when every client has loaded its keys and made one warm-up delivery, and stops
when the last one is done; it prints deliveries/s and ms per delivery (wall time / messages) and
each client's own mean latency.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from connectors.reference.mbo_soap import MboSoapServer
from connectors.soap_delivery import SoapDeliveryTransport
from overstap.domain.identifiers import Brin, BrinVestiging, Oin
from overstap.pki import PartySpec, init_dev_pki
from overstap.ports import Outgoing, Route
from overstap.services.pki import DEV_HUB_OIN

PASS = b"bench-passphrase-long-enough"
HUB = Oin.parse(DEV_HUB_OIN)
MBO = Oin.for_brin(BrinVestiging(Brin("34CD")))
DOSSIER = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "xml" / "dossier.xml"


def _client(route: Route, count: int, batch: int, ready: Any, go: Any, results: Any) -> None:
    payload = DOSSIER.read_bytes()
    transport = SoapDeliveryTransport()
    warm = Outgoing(f"urn:uuid:{uuid.uuid4()}", "warm-up", payload, "")
    if not transport.send(route, [warm])[0].delivered:
        raise SystemExit("warm-up delivery failed")
    messages = [Outgoing(f"urn:uuid:{uuid.uuid4()}", "bench", payload, "") for _ in range(count)]
    ready.release()
    go.wait()
    start = time.perf_counter()
    failed = 0
    for first in range(0, count, batch):
        failed += sum(
            not r.delivered for r in transport.send(route, messages[first : first + batch])
        )
    results.put((time.perf_counter() - start, count, failed))
    transport.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        parties = [
            PartySpec(slug="hub", name="Overstap Hub", oin=HUB, kind="hub"),
            PartySpec(slug="mbo", name="Regio College Oost", oin=MBO, kind="mbo"),
        ]
        pki = init_dev_pki(Path(work) / "pki", parties, PASS)
        secret = Path(work) / "passphrase"
        secret.write_bytes(PASS)
        secret.chmod(0o600)
        with MboSoapServer(pki.root, "mbo", PASS, hub_oin=HUB) as server:
            settings = {
                "endpoint": server.url,
                "oin": MBO.value,
                "pki_dir": str(pki.root),
                "passphrase_file": str(secret),
            }
            route = Route("34CD", "soap", settings)
            # spawn: the server's threads are running here, and fork would copy them half-way.
            mp = multiprocessing.get_context("spawn")
            ready, go, results = mp.Semaphore(0), mp.Event(), mp.Queue()
            shares = [
                args.messages // args.clients + (i < args.messages % args.clients)
                for i in range(args.clients)
            ]
            workers = [
                mp.Process(target=_client, args=(route, n, args.batch, ready, go, results))
                for n in shares
            ]
            for w in workers:
                w.start()
            for _ in workers:
                ready.acquire()
            start = time.perf_counter()
            go.set()
            outcomes = [results.get() for _ in workers]
            wall = time.perf_counter() - start
            for w in workers:
                w.join()
            stored = server.stores - len(workers)  # minus the warm-up deliveries
    failed = sum(f for _, _, f in outcomes)
    print(f"{args.messages:,} deliveries, {args.clients} client processes, batches of {args.batch}")
    print(
        f"wall {wall:.2f} s: {args.messages / wall:.0f} deliveries/s, "
        f"{wall * 1000 / args.messages:.2f} ms per delivery"
    )
    for number, (seconds, count, _) in enumerate(outcomes, 1):
        print(f"client {number}: {count} in {seconds:.2f} s, {seconds * 1000 / count:.2f} ms each")
    print(f"stored {stored:,}, failed {failed}")


if __name__ == "__main__":
    main()
