#!/usr/bin/env python3
"""chaos/test_scenario.py: tests of the scenario language and the checker
that need no lab (no root, no namespaces): parsing, the bounds of
statements that wait, the engine with a stand-in lab, and the checks on
made-up samples and log lines. `python3 chaos/test_scenario.py`."""
import contextlib
import glob
import os
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402
import scenario  # noqa: E402
from chaoslab import LabError  # noqa: E402


def parse(body, n=8):
    return scenario.parse("nodes %d\n%s\n" % (n, body), "t")


class Quiet(check.Report):
    def __init__(self):
        super().__init__(log=lambda s: None)


class ParseOld(unittest.TestCase):
    """The statements that existed before keep their meaning."""

    def test_all_files_parse(self):
        files = glob.glob(os.path.join(HERE, "scenarios", "*.scn"))
        self.assertGreater(len(files), 6)
        for f in files:
            scenario.load(f)

    def test_ctest_short_unchanged(self):
        sc = scenario.load(os.path.join(HERE, "scenarios", "ctest-short.scn"))
        got = [(e["at"], e["dur"], e["kind"]) for e in sc["events"]]
        self.assertEqual(got, [
            (0, 10, "crash"), (13, 12, "partition"), (13, 12, "loss"),
            (28, 14, "loss"), (28, 14, "delay"), (28, 14, "dup"),
            (45, 6, "pause"), (45, 6, "oneway")])
        self.assertEqual(scenario.length(sc), 51)
        self.assertEqual(sc["checks"], [])

    def test_old_errors(self):
        for body, msg in [
                ("at 5 crash n2", "expected 'at T KIND ... for D'"),
                ("at 0 crash n2 for 10\nat 5 pause n2 for 3", "overlap on n2"),
                ("at 5 frob n2 for 3", "unknown fault 'frob'"),
                ("at 5 crash n2 for 0", "D > 0")]:
            with self.assertRaisesRegex(LabError, msg):
                parse(body)


class ParseNew(unittest.TestCase):
    def test_kill_restart(self):
        sc = parse("at 1 kill n8\nat 2 restart n3,n4 for 5\nat 3 restart n5")
        k, r, r2 = sc["events"]
        self.assertEqual((k["kind"], k["targets"], k["dur"]),
                         ("kill", ["n8"], 0.0))
        self.assertEqual((r["kind"], r["targets"], r["dur"]),
                         ("restart", ["n3", "n4"], 5.0))
        self.assertEqual(r2["dur"], 0.0)
        # A restart may take EXIT_MAX_S to leave: the latest end counts it.
        self.assertEqual(scenario.length(sc), 2 + scenario.EXIT_MAX_S + 5)

    def test_when_and_chain(self):
        sc = parse("at 2 restart n4 for 1\n"
                   "at +0 when alive n4 within 20 then restart n5\n"
                   "at +3 when converged within 10\n"
                   "at 1 when dead n8,n7 within 5")
        r, w, c, d = sorted(sc["events"], key=lambda e: e["id"])
        self.assertEqual(w["after"], r["id"])
        self.assertEqual(w["when"], {"cond": "alive", "targets": ["n4"],
                                     "within": 20.0})
        self.assertEqual((w["kind"], w["targets"]), ("restart", ["n5"]))
        self.assertEqual((c["kind"], c["when"]["cond"], c["delay"]),
                         ("when", "converged", 3.0))
        self.assertEqual(d["when"]["targets"], ["n8", "n7"])
        # Earliest: restart done at 3; latest: 2 + 15 + 1, then + 20 + 15,
        # then + 3 + 10.
        self.assertEqual(w["lo"], 3.0)
        self.assertEqual(c["done_hi"], 2 + 15 + 1 + 20 + 15 + 3 + 10)
        self.assertEqual(scenario.length(sc), c["done_hi"])

    def test_checks(self):
        sc = parse("check min-alive 6\ncheck incarnation-up n1..n3\n"
                   "check ends-dead n8\ncheck no-live-deaths")
        self.assertEqual([c["check"] for c in sc["checks"]],
                         ["min-alive", "incarnation-up", "ends-dead",
                          "no-live-deaths"])
        self.assertEqual(sc["checks"][0]["k"], 6)
        self.assertEqual(sc["checks"][1]["targets"], ["n1", "n2", "n3"])

    def test_vocabulary_file(self):
        sc = scenario.load(os.path.join(HERE, "scenarios",
                                        "vocabulary-8.scn"))
        kinds = {e["kind"] for e in sc["events"]}
        self.assertTrue({"kill", "restart", "when"} <= kinds)
        self.assertEqual({e["when"]["cond"] for e in sc["events"]
                          if "when" in e}, set(scenario.CONDITIONS))
        self.assertTrue(any("after" in e for e in sc["events"]))
        self.assertEqual({c["check"] for c in sc["checks"]},
                         {"min-alive", "incarnation-up", "ends-dead",
                          "no-live-deaths"})

    def test_errors(self):
        for body, msg in [
                ("at 1 kill n3 for 5", "a kill stays dead"),
                ("at 1 kill n3\nat 9 crash n3 for 2", "overlap on n3"),
                ("at 1 kill n3\nat +5 restart n3", "overlap on n3"),
                ("at 1 restart n3\nat 5 pause n3 for 2", "overlap on n3"),
                ("at +1 restart n3", "there is none"),
                ("at 1 when alive n3 then restart n4", "time limit"),
                ("at 1 when alive n3 within 0", r"within S' must be"),
                ("at 1 when alive n3 within 700", r"within S' must be"),
                ("at 1 when sleepy n3 within 5", "expected 'when"),
                ("at 1 when alive n3 within 5 restart n4", "expected 'when"),
                ("at 1 when alive n9 within 5", "outside n1..n8"),
                ("check min-alive 9", "expected 'check min-alive K'"),
                ("check ends-dead", "expected 'check"),
                ("check sometimes", "expected 'check")]:
            with self.assertRaisesRegex(LabError, msg, msg=body):
                parse(body)

    def test_chained_restarts_do_not_overlap(self):
        # The second waits for the first to finish: no overlap on n3.
        parse("at 0 restart n3\nat +0 when alive n3 within 9 then "
              "crash n3 for 2")


class FakeLab:
    """Just enough lab for the engine: a state and the faults it gets."""

    def __init__(self):
        self.st = {"next_fault": 1, "faults": []}
        self.calls = []

    @contextlib.contextmanager
    def state(self):
        yield self.st


class Engine(unittest.TestCase):
    def setUp(self):
        self.lab = FakeLab()
        self.saved = (scenario.faults.apply, scenario.faults.undo,
                      scenario.condition, scenario.faults.still_running)
        lab = self.lab

        def apply(lab_, ev, fid, seed=1):
            lab.calls.append(("apply", ev["kind"], time.time()))
            return {"fid": fid, "kind": ev["kind"], "victims": []}

        def undo(lab_, ev, rec):
            lab.calls.append(("undo", ev["kind"], time.time()))

        scenario.faults.apply, scenario.faults.undo = apply, undo
        scenario.faults.still_running = lambda rec: []
        self.met = {}
        scenario.condition = lambda lab_, w: (
            self.met.get(w["cond"], False), "not yet")

    def tearDown(self):
        (scenario.faults.apply, scenario.faults.undo, scenario.condition,
         scenario.faults.still_running) = self.saved

    def test_timeout_skips_followers(self):
        sc = parse("at 0 when dead n3 within 0.6\nat +0 restart n2\n"
                   "at +0 kill n1\nat 0.2 crash n5 for 0.3")
        t0 = time.time()
        evs = {e["line"]: e for e in scenario.execute(
            self.lab, sc, t0, log=lambda s: None)}
        w = evs["at 0 when dead n3 within 0.6"]
        self.assertEqual(w["status"], "timeout")
        self.assertIn("not met within 0.6 s: not yet", w["error"])
        self.assertGreaterEqual(time.time() - t0, 0.6)
        self.assertEqual(evs["at +0 restart n2"]["status"], "skipped")
        self.assertEqual(evs["at +0 kill n1"]["status"], "skipped")
        self.assertEqual([c[:2] for c in self.lab.calls],
                         [("apply", "crash"), ("undo", "crash")])
        rep = Quiet()
        check.check_steps(list(evs.values()), rep)
        self.assertEqual([ok for _, ok, _ in rep.items], [False] * 3)

    def test_chain_times(self):
        self.met["converged"] = True
        sc = parse("at 0 restart n4 for 0.3\n"
                   "at +0.2 when converged within 5 then crash n2 for 0.2\n"
                   "at +0 kill n8")
        t0 = time.time()
        evs = sorted(scenario.execute(self.lab, sc, t0, log=lambda s: None),
                     key=lambda e: e["id"])
        r, c, k = evs
        self.assertEqual([e["status"] for e in evs], ["done"] * 3)
        self.assertAlmostEqual(r["t_end"] - r["t_exited"], 0.3, delta=0.1)
        self.assertAlmostEqual(c["t_armed"] - r["t_end"], 0.2, delta=0.1)
        self.assertAlmostEqual(c["t_end"] - c["t_start"], 0.2, delta=0.1)
        self.assertGreaterEqual(k["t_start"], c["t_end"])
        self.assertEqual([x[:2] for x in self.lab.calls], [
            ("apply", "restart"), ("undo", "restart"), ("apply", "crash"),
            ("undo", "crash"), ("apply", "kill")])
        self.assertEqual([d[0] for d in k["downs"]], ["n8"])
        self.assertIsNone(k["downs"][0][2])


class Checks(unittest.TestCase):
    def test_min_alive(self):
        t0 = 1000.0
        ev = [{"kind": "restart", "downs": [["n2", t0 + 5, t0 + 8]]}]
        samples = [(1.0, "n1", 8, {}), (5.5, "n1", 7, {}),
                   (6.0, "n2", 7, {}),   # leaving: not counted
                   (8.5, "n2", 1, {}),   # back, not joined yet: not counted
                   (9.0, "n2", 8, {}), (9.5, "n2", 1, {})]
        rep = Quiet()
        self.assertTrue(check.check_min_alive(
            {"line": "check min-alive 7", "k": 7}, samples[:5], ev, t0, rep))
        self.assertFalse(check.check_min_alive(
            {"line": "check min-alive 8", "k": 8}, samples[:5], ev, t0, rep))
        self.assertIn("n1 saw only 7 alive at t=5.5", rep.items[-1][2])
        # Once joined, a lone view counts again.
        self.assertFalse(check.check_min_alive(
            {"line": "check min-alive 7", "k": 7}, samples, ev, t0, rep))
        self.assertIn("n2 saw only 1 alive at t=9.5", rep.items[-1][2])

    def test_no_live_deaths(self):
        with tempfile.TemporaryDirectory() as d:
            def stamp(t):
                return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + \
                    ".%03dZ" % int(round((t % 1) * 1000))
            t0 = 1700000000.0
            lines = {
                "n1": ["%s info  swim: n6 suspect->dead inc=4 by n1" %
                       stamp(t0 + 6),
                       "%s info  swim: n3 alive->suspect inc=1 by n1" %
                       stamp(t0 + 20),
                       "%s info  swim: n5 left->dead inc=1 by n1" %
                       stamp(t0 - 5)],  # before t=0: not counted
                "n2": ["%s info  swim: n3 alive->dead inc=1 by n7" %
                       stamp(t0 + 30)]}

            class Lab:
                def nodes(self):
                    return [{"name": k, "log": os.path.join(d, k)}
                            for k in lines]
            for k, v in lines.items():
                with open(os.path.join(d, k), "w") as f:
                    f.write("\n".join(v) + "\n")
            crash = {"kind": "crash", "t_start": t0 + 4, "t_end": t0 + 7,
                     "downs": [["n6", t0 + 4, t0 + 7]]}
            split = {"kind": "partition", "t_start": t0 + 25,
                     "t_end": t0 + 26}
            rep = Quiet()
            # n3's death at t=30 is within the 10 s after the split.
            self.assertTrue(check.check_no_live_deaths(
                Lab(), [crash, split], t0, rep))
            self.assertIn("2 deaths logged", rep.items[-1][2])
            self.assertFalse(check.check_no_live_deaths(
                Lab(), [crash], t0, rep))
            self.assertIn("n2 declared n3 dead at t=30.0 (alive->dead, by "
                          "n7) while it was live", rep.items[-1][2])
            # Without the crash, n6 was live too.
            self.assertFalse(check.check_no_live_deaths(Lab(), [], t0, rep))
            self.assertIn("n1 declared n6 dead at t=6.0", rep.items[-1][2])


if __name__ == "__main__":
    unittest.main()
