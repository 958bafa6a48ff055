"""Tests of scripts/paper_table.py on made-up reports with the fields gpo writes.

    python3 scripts/test_paper_table.py

Field names follow gpo's reports: `gpo eval defender` (`harmful.attack_success`,
`benign_sets[].name` / `over_refusal`), `gpo exploit` (`exploitability`) and `gpo eval
attacker` (`targets[].rates.attack_success`, `diversity_self_bleu`, `diversity_embedding`),
each value an estimate `{mean, lo, hi, n, level}`.
"""

import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paper_table as pt  # noqa: E402


def est(mean):
    return {"mean": mean, "lo": mean - 0.05, "hi": mean + 0.05, "n": 200, "level": 0.95}


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def make_seed(out, shift):
    """A finished seed whose GPO defender is 0.1 + shift less exploitable than RLHF's."""
    exploit = {"initial": 0.6, "rlhf-defender": 0.5, "gpo": 0.4 - shift, "gpo-nodiv": 0.45}
    for i, d in enumerate(pt.DEFENDERS):
        write(f"{out}/eval/{d}-defender.json", {
            "harmful": {"attack_success": est(0.3 + 0.01 * i)},
            "benign_sets": [{"name": "sharegpt-heldout", "over_refusal": est(0.2)},
                            {"name": "alarming-benign", "over_refusal": est(0.15)}],
        })
        write(f"{out}/exploit-{d}/exploit.json", {"exploitability": est(exploit[d])})
    for a in pt.ATTACKERS:
        write(f"{out}/eval/{a}-attacker.json", {
            "targets": [{"rates": {"attack_success": est(0.2)}} for _ in pt.DEFENDERS],
            "diversity_self_bleu": est(0.98),
            "diversity_embedding": est(0.9 + (0.02 + shift if a == "gpo" else 0.0)),
        })


def quiet(f, *args):
    with redirect_stdout(io.StringIO()) as out:
        f(*args)
    return out.getvalue()


class PaperTable(unittest.TestCase):
    def test_one_seed_reads_every_cell_with_its_interval(self):
        with tempfile.TemporaryDirectory() as out:
            make_seed(out, 0.0)
            md = quiet(pt.one_seed, out)
            table = pt.load(f"{out}/table.json")
        self.assertAlmostEqual(table["defender"]["gpo"]["exploitability"], 0.4)
        self.assertAlmostEqual(table["defender"]["gpo-nodiv"]["harmbench"], 0.33)
        self.assertAlmostEqual(table["attacker"]["gpo"]["cosine"], 0.92)
        self.assertAlmostEqual(table["attacker"]["initial"]["self_bleu"], 0.98)
        self.assertIn("0.980 [0.930, 1.030]", md)
        self.assertNotIn("—", md)

    def test_a_missing_report_is_a_dash(self):
        with tempfile.TemporaryDirectory() as out:
            make_seed(out, 0.0)
            os.remove(f"{out}/exploit-gpo/exploit.json")
            self.assertEqual(pt.missing_reports(out), ["exploit-gpo/exploit.json"])
            md = quiet(pt.one_seed, out)
        self.assertIn("—", md)

    def test_seeds_pair_the_claims_and_decide_only_outside_zero(self):
        # Exploitability GPO - RLHF over three seeds: -0.1, -0.11, -0.12; mean -0.11, sd 0.01,
        # half width 4.303 * 0.01 / sqrt(3) = 0.0248 (t with 2 degrees of freedom).
        with tempfile.TemporaryDirectory() as out:
            for s, shift in zip("012", (0.0, 0.01, 0.02)):
                make_seed(f"{out}/seed-{s}", shift)
                quiet(pt.one_seed, f"{out}/seed-{s}")
            md = quiet(pt.seeds, out, ["0", "1", "2"])
        lines = {l.split(" | ")[0]: l for l in md.splitlines() if l.startswith("| the GPO")}
        self.assertIn("-0.110 [-0.135, -0.085] | supported",
                      lines["| the GPO defender is less exploitable than the RLHF defender"])
        # HarmBench: 0.32 - 0.31 on every seed, an interval of zero width that excludes 0.
        self.assertIn("+0.010 [+0.010, +0.010] | contradicted",
                      lines["| the GPO defender has lower HarmBench attack success than the "
                            "RLHF defender"])
        # Attacker success is equal on every seed: the interval is [0, 0], which includes 0.
        self.assertIn("cannot decide", lines["| the GPO attacker succeeds more often than the "
                                             "RLHF attacker (against the initial defender)"])

    def test_keep_copies_the_reports_a_table_needs(self):
        with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as dest:
            make_seed(out, 0.0)
            quiet(pt.keep, out, dest)
            self.assertEqual(pt.missing_reports(dest), [])
            self.assertTrue(os.path.exists(f"{dest}/table.md"))

    def test_an_attacker_report_with_other_targets_is_an_error(self):
        with tempfile.TemporaryDirectory() as out:
            make_seed(out, 0.0)
            path = f"{out}/eval/gpo-attacker.json"
            report = pt.load(path)
            report["targets"] = report["targets"][:2]
            write(path, report)
            with self.assertRaises(SystemExit) as e:
                quiet(pt.one_seed, out)
        self.assertIn("2 targets, expected 4", str(e.exception))


if __name__ == "__main__":
    unittest.main()
