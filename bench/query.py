"""Query and retrieve figures on long-lived systems: memory idle and after loading, C-FIND
study-level latency at each index size, QIDO-RS, and on the CT study C-MOVE, C-GET, WADO-RS
and rendered frames (first render and repeated), then C-FIND latency while eight
associations store (their instances join the index before the next tier). Every system is
started once; each measurement visits the systems in turn."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from bench import corpus, dimse, latency, storers, systems, web
from bench.corpus import Corpus
from bench.procs import Child, dcmtk_env, port_open
from bench.results import BenchError, Results

Log = Callable[[str], None]
QUERIES = {
    "name": "PatientName=A*",
    "id": "exact PatientID",
    "date": f"StudyDate={corpus.DATE_RANGE}",
}


@dataclass(frozen=True)
class Plan:
    """How many samples each figure takes (medians are reported)."""

    find_process: int = 20
    find_assoc: int = 20
    qido: int = 20
    wado: int = 3
    render: int = 20
    move: int = 3
    get: int = 3
    find_idle: int = 100
    find_busy: int = 200
    """C-FINDs idle, then as many as fit (at most `find_busy`) while eight associations
    store; the p95 of each."""


BUSY_STREAMS = 8
BUSY_MINIMUM = 5  # C-FINDs that must complete while storing, or the figure is an error


@dataclass(frozen=True)
class Tier:
    """An index size: the corpora loaded to reach it (on top of the previous tiers)."""

    studies: int
    load: tuple[Corpus, ...]
    patient_id: str

    @property
    def label(self) -> str:
        return f"{self.studies:,} studies"


def conditions(query: str, tier: Tier) -> dict[str, str]:
    if query == "name":
        return {"PatientName": "A*"}
    if query == "id":
        return {"PatientID": tier.patient_id}
    return {"StudyDate": corpus.DATE_RANGE}


class QueryPhase:
    def __init__(
        self,
        ctx: systems.Context,
        ct: Corpus,
        plan: Plan,
        results: Results,
        log: Log,
        busy: Corpus | None = None,
    ) -> None:
        self.ctx, self.ct, self.plan, self.results, self.log = ctx, ct, plan, results, log
        self.busy = busy
        self.running: dict[str, systems.Running] = {}
        self.http: dict[str, str | None] = {}  # None: DICOMweb answers; else why not
        self.loaded = 0
        self.dest_out = ctx.work / "move-destination"

    # -- the phase ------------------------------------------------------------------------------

    def run(
        self,
        names: Sequence[str],
        tiers: Sequence[Tier],
        *,
        running: dict[str, systems.Running] | None = None,
        loaded: int = 0,
    ) -> None:
        """Measure on `running` systems (holding `loaded` instances already, which include the
        CT corpus), or on systems of `names` started here; stops them all at the end."""
        self.running = dict(running or {})
        self.loaded = loaded
        self.dest_out.mkdir(parents=True, exist_ok=True)
        command = systems.storescp_command(self.ctx.move_aet, self.ctx.move_port, self.dest_out)
        destination: Child | None = None
        try:
            destination = Child("move-destination", command, self.ctx.logs, env=dcmtk_env())
            destination.wait_ready(lambda: port_open(self.ctx.move_port), 30, "listening port")
            if running is None:
                self._start(names)
            for name in names:
                if name not in self.running:
                    self.results.note(f"{name}: not running, no query figures")
            if not self.running:
                return
            self._probe_http()
            for index, tier in enumerate(tiers):
                self._tier(tier, first=index == 0, with_ct=running is None and index == 0)
        finally:
            with ThreadPoolExecutor(max(1, len(self.running))) as pool:
                list(pool.map(systems.Running.stop, self.running.values()))
            if destination is not None:
                destination.stop()

    def _each(self, key: str, action: Callable[[systems.Running], None]) -> None:
        """Run `action` on every running system; a failure becomes that system's entry."""
        for name, running in self.running.items():
            try:
                action(running)
            except Exception as exc:
                self.results.error(key, name, exc)

    def _start(self, names: Sequence[str]) -> None:
        self.log(f"query phase: starting {', '.join(names)}")
        with ThreadPoolExecutor(len(names)) as pool:  # start-up is not measured: overlap it
            starts = {name: pool.submit(systems.start, name, self.ctx) for name in names}
        for name, future in starts.items():
            try:
                self.running[name] = future.result()
            except Exception as exc:
                self.results.note(f"{name}: query phase start failed: {exc}")

    def _probe_http(self) -> None:
        for name, running in self.running.items():
            wait = 10.0  # both start HTTP beside DICOM; Orthanc loads its plugins first
            self.http[name] = web.dicomweb_available(running.http_port, wait, running.http_login)

    def _tier(self, tier: Tier, *, first: bool, with_ct: bool) -> None:
        suffix = f".{tier.studies}"
        load = list(tier.load) + ([self.ct] if with_ct else [])
        count = sum(c.instances for c in load)
        self.loaded += count
        key = f"load{suffix}"
        if first:  # setting up, not a figure: load every system at once
            self.log(f"loading {count:,} instances into every system at once")
            with ThreadPoolExecutor(len(self.running)) as pool:
                jobs = {n: pool.submit(self._load, r, load) for n, r in self.running.items()}
            for name, job in jobs.items():
                try:
                    seconds = job.result()
                    self.results.note(f"{name}: {count} instances loaded in {seconds:.1f} s")
                except Exception as exc:
                    self.results.note(f"{name}: loading failed: {exc}")
        else:
            label = f"Load to {tier.label}, 4 storescu (s)"
            self.results.define(key, label, "s", higher_is_better=False)
            for name, running in self.running.items():
                self.log(f"loading {count:,} instances into {name}")
                try:
                    seconds = self._load(running, load)
                except Exception as exc:
                    self.results.error(key, name, exc)
                    continue
                rate = count / seconds
                self.results.put(key, name, seconds, instances=count, instances_per_s=rate)
                self.log(f"  {count:,} instances in {seconds:.1f} s ({rate:.0f} inst/s)")
        key = f"rss{suffix}"
        label = f"Memory after loading {self.loaded:,} instances (MB)"
        self.results.define(key, label, "MB", higher_is_better=False)
        self._each(key, lambda r: self.results.put(key, r.name, r.rss_mb()))
        self._find_process(tier, suffix)
        for query in QUERIES:
            self._find_assoc(tier, suffix, query)
        self._qido(tier, suffix)
        if first:
            self._move()
            self._get()
            self._wado_render()
            if self.busy is not None:  # last: it adds `busy` to the index
                self._find_busy(tier, self.busy)

    # -- loading --------------------------------------------------------------------------------

    def _load(self, running: systems.Running, load: Sequence[Corpus]) -> float:
        """Send `load` with four storescu processes; returns the seconds it took."""
        before = running.count()
        start = time.perf_counter()
        for item in load:
            timeout = 60.0 + item.instances * 0.5
            log_path = self.ctx.logs / f"load-{running.name}.log"
            dimse.storescu(
                running.port, running.aet, item.parts, streams=4, timeout=timeout, log=log_path
            )
        seconds = time.perf_counter() - start
        expected = sum(item.instances for item in load)
        stored = running.count() - before
        if stored != expected:
            raise BenchError(f"stored {stored} of {expected} instances")
        return seconds

    # -- C-FIND ---------------------------------------------------------------------------------

    def _find_process(self, tier: Tier, suffix: str) -> None:
        key = f"find.process.name{suffix}"
        label = f"C-FIND PatientName=A*, findscu process, {tier.label} (ms)"
        self.results.define(key, label, "ms", higher_is_better=False)

        def measure(running: systems.Running) -> None:
            query = conditions("name", tier)
            samples = [
                1000 * dimse.findscu(running.port, running.aet, query)
                for _ in range(self.plan.find_process)
            ]
            self.results.put(key, running.name, median(samples), samples=samples)

        self.log(f"C-FIND (findscu) at {tier.label}")
        self._each(key, measure)

    def _find_assoc(self, tier: Tier, suffix: str, query: str) -> None:
        key = f"find.assoc.{query}{suffix}"
        label = f"C-FIND {QUERIES[query]}, one association, {tier.label} (ms)"
        self.results.define(key, label, "ms", higher_is_better=False)
        identifier = dimse.study_query(**conditions(query, tier))
        found: dict[str, int] = {}

        def measure(running: systems.Running) -> None:
            session = dimse.FindSession(running.port, running.aet)
            try:
                warm_up, matches = session.query(identifier)
                samples = []
                for _ in range(self.plan.find_assoc):
                    seconds, matches = session.query(identifier)
                    samples.append(1000 * seconds)
            finally:
                session.close()
            found[running.name] = matches
            self.results.put(
                key, running.name, median(samples), samples=samples, matches=matches,
                warm_up_ms=1000 * warm_up,
            )  # fmt: skip

        self.log(f"C-FIND {QUERIES[query]} (one association) at {tier.label}")
        self._each(key, measure)
        if len(set(found.values())) > 1:
            self.results.note(f"{key}: systems returned different numbers of matches: {found}")

    # -- HTTP -----------------------------------------------------------------------------------

    def _http(
        self,
        key: str,
        action: Callable[[web.Client, systems.Running], None],
        *more_keys: str,
    ) -> None:
        """Run `action` on every system that serves DICOMweb; a failure (or no DICOMweb)
        becomes that system's entry in `key` and `more_keys` (rows it has not filled)."""
        for name, running in self.running.items():
            reason = self.http.get(name)
            keys = (key, *more_keys)
            if reason is not None or running.http_port is None:
                for each in keys:
                    self.results.not_applicable(each, name, reason or "no HTTP port")
                continue
            client = None
            try:
                client = web.Client(running.http_port, login=running.http_login)
                action(client, running)
            except Exception as exc:
                for each in keys:
                    if "value" not in self.results.figures[each].entries.get(name, {}):
                        self.results.error(each, name, exc)
            finally:
                if client is not None:
                    client.close()

    def _qido(self, tier: Tier, suffix: str) -> None:
        for name, query in (("limit", "limit=100"), ("name", "PatientName=A*")):
            key = f"qido.{name}{suffix}"
            label = f"QIDO-RS /studies?{query}, {tier.label} (ms)"
            self.results.define(key, label, "ms", higher_is_better=False)

            def measure(
                client: web.Client, running: systems.Running, key: str = key, query: str = query
            ) -> None:
                client.get(f"{web.DICOMWEB}/studies?{query}", web.JSON)  # warm-up
                self.results.put(key, running.name, **web.qido(client, query, self.plan.qido))

            self.log(f"QIDO-RS {query} at {tier.label}")
            self._http(key, measure)

    def _wado_render(self) -> None:
        """Rendered frames first (so that no WADO-RS has just read their files), then WADO-RS;
        the rows keep the order WADO-RS, rendered."""
        study = self.ct.first_study
        wado_key = "wado.study"
        label = (
            f"WADO-RS CT study ({study['instances']} inst, {study['bytes'] / 1e6:.0f} MB) (MB/s)"
        )
        self.results.define(wado_key, label, "MB/s", higher_is_better=True)
        self._render(study)
        self.log("WADO-RS")
        self._http(
            wado_key,
            lambda c, r: self.results.put(
                wado_key, r.name, **web.wado_study(c, study["study_uid"], self.plan.wado)
            ),
        )

    def _render(self, study: dict[str, str]) -> None:
        """Per media type: the first render of frames not requested before (a fresh instance
        each sample, so no render cache can answer), and one frame requested again and again.
        The fresh frames are split between the media types; a warm-up request on the repeated
        frame comes first."""
        warm = {"study_uid": study["study_uid"], "series_uid": study["series_uid"]}
        warm["sop_uid"] = study["sop_uid"]
        fresh = [
            uids
            for uids in corpus.study_instances(self.ct, study["study_uid"])
            if uids["sop_uid"] != warm["sop_uid"]
        ]
        medias = ("image/png", "image/jpeg")
        count = min(self.plan.render, len(fresh) // len(medias))  # 119 fresh frames
        self.log("rendered frames, first render and repeated")
        for index, media in enumerate(medias):
            kind = media.split("/")[1]
            first_key, again_key = f"render.{kind}.first", f"render.{kind}"
            head = f"Rendered 512x512 CT frame, {kind.upper()}"
            self.results.define(
                first_key, f"{head}, first render (ms)", "ms", higher_is_better=False
            )
            label = f"{head}, same frame again (ms)"
            self.results.define(again_key, label, "ms", higher_is_better=False)
            frames = fresh[index * count : (index + 1) * count]

            def measure(
                client: web.Client,
                running: systems.Running,
                media: str = media,
                keys: tuple[str, str] = (first_key, again_key),
                frames: list[dict[str, str]] = frames,
            ) -> None:
                web.rendered(client, warm, media, 1)  # warm-up (and into any cache)
                firsts = [web.rendered(client, uids, media, 1) for uids in frames]
                samples = [float(entry["value"]) for entry in firsts]  # type: ignore[arg-type]
                self.results.put(
                    keys[0], running.name, median(samples), samples=samples,
                    p95=latency.percentile(samples, 95), frames=len(frames),
                )  # fmt: skip
                entry = web.rendered(client, warm, media, self.plan.render)
                self.results.put(keys[1], running.name, **entry)

            self._http(first_key, measure, again_key)

    # -- C-MOVE ---------------------------------------------------------------------------------

    def _move(self) -> None:
        study = self.ct.first_study
        key = "move.study"
        label = f"C-MOVE CT study ({study['instances']} inst) to storescp (inst/s)"
        self.results.define(key, label, "inst/s", higher_is_better=True)
        self.log("C-MOVE of the CT study")
        for _ in range(self.plan.move):
            self._each(key, self._move_once)

    def _get(self) -> None:
        study = self.ct.first_study
        key = "get.study"
        label = f"C-GET CT study ({study['instances']} inst) with getscu (inst/s)"
        self.results.define(key, label, "inst/s", higher_is_better=True)
        self.log("C-GET of the CT study")
        for _ in range(self.plan.get):
            self._each(key, self._get_once)

    def _get_once(self, running: systems.Running) -> None:
        study = self.ct.first_study
        out = self.ctx.work / "get-destination"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        try:
            timeout = 60.0 + study["instances"]
            seconds = dimse.getscu(running.port, running.aet, study["study_uid"], out, timeout)
            received = systems.count_files(out)
        finally:
            shutil.rmtree(out, ignore_errors=True)
        if received != study["instances"]:
            raise BenchError(f"getscu received {received} of {study['instances']}")
        rate = study["instances"] / seconds
        self.results.add_sample("get.study", running.name, rate, seconds=seconds)

    # -- C-FIND while storing -------------------------------------------------------------------

    def _find_busy(self, tier: Tier, busy: Corpus) -> None:
        idle_key, busy_key = "find.idle.p95", "find.busy.p95"
        head = f"C-FIND PatientName=A*, one association, {tier.label}"
        self.results.define(idle_key, f"{head}, idle (p95 ms)", "ms", higher_is_better=False)
        label = f"{head}, while {BUSY_STREAMS} associations store 64x64 (p95 ms)"
        self.results.define(busy_key, label, "ms", higher_is_better=False)
        groups = latency.chunks(storers.corpus_files(busy.parts), BUSY_STREAMS)
        self.log(f"C-FIND while {BUSY_STREAMS} associations store {busy.instances:,} instances")
        for name, running in self.running.items():
            try:
                self._find_busy_once(running, tier, busy, groups, (idle_key, busy_key))
            except Exception as exc:
                self.results.error(busy_key, name, exc)
        self.loaded += busy.instances

    def _find_busy_once(
        self,
        running: systems.Running,
        tier: Tier,
        busy: Corpus,
        groups: list[list[Path]],
        keys: tuple[str, str],
    ) -> None:
        identifier = dimse.study_query(**conditions("name", tier))
        before = running.count()
        session = dimse.FindSession(running.port, running.aet)
        try:
            session.query(identifier)  # warm-up
            idle = [1000 * session.query(identifier)[0] for _ in range(self.plan.find_idle)]
            self.results.put(
                keys[0], running.name, latency.percentile(idle, 95), samples=idle,
                median=median(idle),
            )  # fmt: skip
            folder = self.ctx.logs / f"storescu-{running.name}-busy"
            store = storers.TimedStore(
                running.port, running.aet, groups, folder, 60.0 + busy.instances * 0.5
            )
            samples: list[float] = []
            try:
                while store.running() and len(samples) < self.plan.find_busy:
                    samples.append(1000 * session.query(identifier)[0])
                outcome = store.finish()
            except BaseException:
                store.kill()
                raise
        finally:
            session.close()
        stored = running.count() - before
        if stored != busy.instances:
            raise BenchError(f"stored {stored} of {busy.instances} instances")
        if len(samples) < BUSY_MINIMUM:
            raise BenchError(f"storing ended after {len(samples)} C-FINDs")
        p95 = latency.percentile(samples, 95)
        self.results.put(
            keys[1], running.name, p95, samples=samples, median=median(samples),
            store_instances_per_s=outcome.instances_per_s,
            store_latency_p99_ms=outcome.latency_ms(99),
        )  # fmt: skip
        self.log(
            f"  {running.name}: p95 {p95:.1f} ms over {len(samples)} C-FINDs while storing at "
            f"{outcome.instances_per_s:.0f} inst/s (idle p95 "
            f"{latency.percentile(idle, 95):.1f} ms)"
        )

    def _move_once(self, running: systems.Running) -> None:
        study = self.ct.first_study
        shutil.rmtree(self.dest_out, ignore_errors=True)
        self.dest_out.mkdir()
        timeout = 60.0 + study["instances"]
        seconds = dimse.movescu(
            running.port, running.aet, self.ctx.move_aet, study["study_uid"], timeout
        )
        received = systems.count_files(Path(self.dest_out))
        if received != study["instances"]:
            raise BenchError(f"destination received {received} of {study['instances']}")
        rate = study["instances"] / seconds
        self.results.add_sample("move.study", running.name, rate, seconds=seconds)
