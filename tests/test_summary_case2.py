"""Cases 2/4 in the summary (pe_utils.experiments.summary_case2, summary_case2_paired,
report.figures_case2, the thesis's Tables 6.3/6.4): small hand-made runs dataframes as
``read_metrics`` returns them (CONTRACTS.md's keys), hand-computed intervals."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pe_utils.experiments.summary_case2 import (case24_runs, exam_level_table, fraction_label, fraction_order,
                                                fraction_summary, table_6_3, table_6_4, toggle_differences)
from pe_utils.experiments.summary_case2_paired import (ALL_FRACTIONS, case24_notes, paired_comparison,
                                                       paired_table, seed_pairs, verdict)
from pe_utils.report.thesis_numbers import TABLE_6_3, TABLE_6_4, TRAIN_FRACTIONS_6_4

T_975_DF2 = 4.302652729749464    # Student t quantile 0.975, 2 degrees of freedom


def _run(case, fraction, seed, auc, experiment=None, **extra):
    return dict(notebook="04_case2_supervised" if case == "case2" else "05_case4_contrastive", profile="demo",
                case=case, dataset="dataset2", train_fraction=fraction, seed=seed, experiment=experiment,
                auc=auc, f1=auc - 0.1, accuracy=auc - 0.05, threshold=0.4, threshold_source="validation_youden",
                exam_auc_max=auc + 0.05, exam_auc_topk=auc + 0.02, path=f"{case}/{fraction}/{seed}/{experiment}",
                **extra)


def _runs():
    rows = [_run("case2", 100, s, a) for s, a in ((0, 0.80), (1, 0.82), (2, 0.84))]
    rows += [_run("case4", 100, s, a) for s, a in ((1, 0.85), (2, 0.88))]          # seed 0 not run
    rows += [_run("case2", 66.66, 0, 0.70), _run("case4", 66.66, 0, 0.75)]
    rows += [_run("case2", 5, 0, 0.6)]                                                # no Case4 partner
    rows += [dict(notebook="01_case1_supervised", sampling_rate="1/2", seed=0, auc=0.9)]
    rows += [dict(notebook="02_case3_pretrain", case="case4", dataset="dataset2", seed=0, epochs=2)]  # Case4's pretraining
    return pd.DataFrame(rows)


def test_fraction_labels_and_order():
    assert [fraction_label(v) for v in (100, 66.66, 33.34, 5.0, 66.6600001)] == ["100", "66.66", "33.34", "5", "66.66"]
    assert fraction_order(["5", "100", "66.66", "5"]) == ["100", "66.66", "5"]


def test_case24_runs_keeps_cases_2_and_4_named_and_sorted():
    runs = case24_runs(_runs())
    assert len(runs) == 8 and set(runs.method) == {"supervised", "contrastive"}
    assert list(runs.method[:5]) == ["supervised"] * 5
    assert list(runs.fraction[:5]) == ["100", "100", "100", "66.66", "5"]
    assert runs.experiment.isna().all()
    assert set(runs.configuration) == {"default"}
    assert case24_runs(pd.DataFrame([_run("case2", 100, 0, 0.8, experiment=11)])).configuration[0] == "experiment 11"
    assert case24_runs(pd.DataFrame([dict(notebook="00_preprocessing")])).empty
    with pytest.raises(ValueError, match="train_fraction"):
        case24_runs(pd.DataFrame([dict(notebook="04_case2_supervised", case="case2", seed=0, auc=0.8,
                                        path="x/metrics.json")]))


def test_fraction_summary_intervals_by_hand():
    s = fraction_summary(case24_runs(_runs())).set_index(["method", "fraction", "metric"])
    sup = s.loc[("supervised", "100", "auc")]                                  # 0.80 0.82 0.84: sd 0.02
    assert sup["n"] == 3 and sup["mean"] == pytest.approx(0.82)
    assert sup["high"] - sup["mean"] == pytest.approx(T_975_DF2 * 0.02 / math.sqrt(3))
    one = s.loc[("supervised", "5", "f1")]
    assert one["n"] == 1 and one["mean"] == pytest.approx(0.5) and pd.isna(one["low"]) and "two seeds" in one["reason"]


def test_a_seed_run_twice_counts_once():
    rows = _runs()
    twice = pd.concat([rows, pd.DataFrame([_run("case2", 100, 0, 0.90)])], ignore_index=True)
    s = fraction_summary(case24_runs(twice)).set_index(["method", "fraction", "metric"])
    assert s.loc[("supervised", "100", "auc"), "n"] == 3
    assert s.loc[("supervised", "100", "auc"), "mean"] == pytest.approx((0.85 + 0.82 + 0.84) / 3)


def test_table_6_4_sets_ours_beside_the_thesis():
    table = table_6_4(case24_runs(_runs()), TABLE_6_4)
    assert list(table.index) == [fraction_label(f) for f in TRAIN_FRACTIONS_6_4]
    half = T_975_DF2 * 0.02 / math.sqrt(3)
    assert table.loc["100", ("AUC", "supervised (ours)")] == f"0.820 \u00b1 {half:.3f} (n=3)"
    assert table.loc["100", ("AUC", "supervised (thesis)")] == "0.862"
    assert table.loc["80", ("AUC", "supervised (thesis)")] == "0.8613"          # as printed
    assert table.loc["66.66", ("F1", "contrastive (ours)")] == "0.650 (n=1)"
    assert table.loc["66.66", ("F1", "contrastive (thesis)")] == "0.805"
    assert table.loc["90", ("AUC", "supervised (ours)")] == ""                    # not run
    assert "nan" not in table.to_string()


def test_the_oracle_threshold_figures_sit_beside_the_thesis_like_for_like():
    rows = [_run("case2", 100, 0, 0.8, metrics_at_oracle=dict(f1=0.70, accuracy=0.81)),
            _run("case2", 100, 1, 0.8, metrics_at_oracle=dict(f1=0.74, accuracy=0.83)),
            _run("case4", 100, 0, 0.8, metrics_at_oracle=None)]                 # not recorded
    runs = case24_runs(pd.DataFrame(rows))
    assert list(runs.oracle_f1[:2]) == [0.70, 0.74] and np.isnan(runs.oracle_f1[2])
    table = table_6_4(runs, TABLE_6_4, metrics=("oracle_f1", "oracle_accuracy"))
    cell = table.loc["100", ("F1 (oracle threshold)", "supervised (ours)")]
    assert cell == f"0.720 \u00b1 {12.706204736174707 * np.std([0.70, 0.74], ddof=1) / math.sqrt(2):.3f} (n=2)"
    assert table.loc["100", ("F1 (oracle threshold)", "supervised (thesis)")] == "0.721"
    assert table.loc["100", ("accuracy (oracle threshold)", "contrastive (thesis)")] == "0.77"
    assert table.loc["100", ("accuracy (oracle threshold)", "contrastive (ours)")] == "no value in 1 run"


def test_without_any_run_the_thesis_still_shows_and_the_notes_say_what_to_run():
    runs = case24_runs(pd.DataFrame([dict(notebook="01_case1_supervised", auc=0.9)]))
    table = table_6_4(runs, TABLE_6_4)
    assert table.loc["5", ("accuracy", "contrastive (thesis)")] == "0.654"
    assert (table.xs("supervised (ours)", axis=1, level=1) == "").all().all()
    assert paired_comparison(runs).empty and paired_table(paired_comparison(runs)).empty
    assert exam_level_table(runs).empty
    notes = case24_notes(runs, "smoke")
    assert "No supervised (Case2) run of Table 6.4 here: `python -m pe_utils batch --profile smoke --cases case2`" in notes[0]
    assert "--cases case4`" in notes[1] and "1-13" in notes[2]


def test_pairs_match_by_seed():
    pairs = seed_pairs(case24_runs(_runs()), "auc").set_index(["fraction", "seed"])
    assert math.isnan(pairs.loc[("100", 0), "contrastive"])
    assert pairs.loc[("100", 2), "contrastive"] == pytest.approx(0.88)
    assert pairs.loc[("100", 2), "supervised"] == pytest.approx(0.84)
    c = paired_comparison(case24_runs(_runs())).set_index(["fraction", "metric"])
    d = c.loc[("100", "auc")]                        # seeds 1, 2: 0.85 - 0.82, 0.88 - 0.84
    assert d["n"] == 2 and d["mean"] == pytest.approx(0.035)
    assert d["high"] - d["mean"] == pytest.approx(12.706204736174707 * np.std([0.03, 0.04], ddof=1) / math.sqrt(2))
    assert d["verdict"] == ("cannot tell apart at n=2: the interval holds 0 (a difference this size at this "
                            "spread needs about 3 seeds)")
    assert c.loc[("66.66", "auc"), "verdict"] == "cannot tell apart from one seed"
    assert ("5", "auc") not in c.index                  # supervised only: the notes name the command
    apart = case24_runs(pd.DataFrame([_run("case2", 50, 0, 0.8), _run("case4", 50, 1, 0.8)]))
    assert paired_comparison(apart).set_index("metric").loc["auc", "verdict"] == "no pair of runs yet"


def test_verdicts_in_plain_words():
    base = dict(wilcoxon_p=None)
    assert verdict(dict(base, n=0, mean=None, low=None, high=None, p_value=None)) == "no pair of runs yet"
    assert verdict(dict(base, n=5, mean=0.03, low=0.01, high=0.05, p_value=0.004)) == "contrastive better (n=5, p=0.004)"
    assert verdict(dict(base, n=5, mean=-0.03, low=-0.05, high=-0.01, p_value=0.004)).startswith("supervised better")
    assert verdict(dict(n=6, mean=0.03, low=0.01, high=0.05, p_value=0.01, wilcoxon_p=0.09)).endswith(
        "Wilcoxon does not confirm (p=0.09)")
    assert verdict(dict(base, n=3, mean=0.0001, low=-0.1, high=0.1, p_value=0.99, sd=0.04)).endswith(
        "(a difference this small needs over 1,000 seeds at this spread)")
    assert verdict(dict(base, n=3, mean=0.01, low=-0.1, high=0.1, p_value=0.7)) == \
        "cannot tell apart at n=3: the interval holds 0"                      # no spread given: no estimate
    assert verdict(dict(base, n=3, mean=0.02, low=0.02, high=0.02, p_value=None)) == \
        "contrastive ahead by the same 0.020 at all 3 seeds (no spread to test)"


def test_a_clear_difference_over_five_seeds_is_called_and_pooled_over_fractions():
    rows = []
    for seed in range(5):
        for fraction, gain in ((100, 0.05), (50, 0.06)):
            sup = 0.80 + 0.01 * seed
            rows += [_run("case2", fraction, seed, sup), _run("case4", fraction, seed, sup + gain + 0.002 * (seed % 2))]
    c = paired_comparison(case24_runs(pd.DataFrame(rows))).set_index(["fraction", "metric"])
    assert c.loc[("100", "auc"), "verdict"].startswith("contrastive better (n=5")
    pooled = c.loc[(ALL_FRACTIONS, "auc")]
    assert pooled["fractions"] == "100, 50" and pooled["n"] == 5
    assert pooled["mean"] == pytest.approx(0.055 + 0.002 * 2 / 5)
    table = paired_table(c.reset_index())
    assert table.loc[ALL_FRACTIONS, ("AUC", "difference [95 % interval]")].startswith("+0.056 [")


def test_notes_name_unpaired_cells_and_missing_experiments():
    runs = case24_runs(pd.concat([_runs(), pd.DataFrame([_run("case2", 100, 0, 0.9, experiment=e) for e in (1, 2, 3, 11)])]))
    notes = case24_notes(runs, "demo")
    text = "\n".join(notes)
    assert "Table 6.4's fractions without a run here: 90, 80, 75, 50, 33.34, 25, 20, 10 %" in text
    assert "At 5 %, supervised runs have no contrastive partner yet: `python -m pe_utils batch --profile demo " \
           "--cases case4 --fractions 5` runs it." in text
    assert "seed 0 at 100 % (supervised only)" in text and "at 5 %" not in text.split("Left out")[1]
    assert "experiments without a run here: 4-10, 12-13 (`python -m pe_utils batch --profile demo --cases " \
           "case2_ablation` replays the ablation)" in text
    assert not any("No supervised" in n or "No contrastive" in n for n in notes)


def test_table_6_3_rows_beside_the_thesis_with_differing_toggles():
    runs = case24_runs(pd.DataFrame([
        _run("case2", 100, 0, 0.90, experiment=11, lr=0.001, batch_size=32, optimizer="adam", augment=True,
             dropout=0.5, sampling="resample", class_weights=True, bias_prior=0.01),
        _run("case2", 100, 1, 0.92, experiment=11, bias_prior=0.01),      # other toggles not recorded
        _run("case2", 100, 0, 0.70, experiment=1, optimizer="sgd", dropout=0.0, sampling="none",
             class_weights=False, bias_prior=None),
    ]))
    t = table_6_3(runs, TABLE_6_3)
    assert list(t.index) == list(range(1, 14)) and t.loc[12, "table"] == "C.1"
    assert t.loc[11, "AUC (ours)"].startswith("0.910 \u00b1") and t.loc[11, "AUC (thesis)"] == "0.92676"
    assert t.loc[11, "ours differs in"] == "batch 32 (thesis 256), lr 0.001 (thesis 0.01)"
    assert t.loc[1, "AUC (ours)"] == "0.700 (n=1)" and t.loc[1, "ours differs in"] == ""
    assert t.loc[5, "AUC (ours)"] == "" and "lr 0.1, batch 256, SGD" in t.loc[5, "configuration (thesis)"]
    row7 = TABLE_6_3.set_index("experiment").loc[7].to_dict()
    assert toggle_differences(dict(optimizer="Adam", sampling="resample", bias_prior=None), row7) == [
        "Adam (thesis SGD)", "sampling (thesis: no sampling)", "no bias (thesis: bias)"]


def test_exam_table_beside_image_auc_leaves_out_runs_without_exam_auc():
    rows = [_run("case2", 100, s, a) for s, a in ((0, 0.8), (1, 0.9))]
    rows[1]["exam_auc_topk"] = None                     # the run's test exams held one class
    t = exam_level_table(case24_runs(pd.DataFrame(rows)))
    assert t.loc[("supervised", "100"), "image AUC"].endswith("(n=2)")
    assert t.loc[("supervised", "100"), "exam AUC (max)"].startswith("0.900 \u00b1")
    assert t.loc[("supervised", "100"), "exam AUC (top k)"] == "0.820 (n=1)"
    rows[0]["exam_auc_topk"] = None
    t = exam_level_table(case24_runs(pd.DataFrame(rows)))
    assert t.loc[("supervised", "100"), "exam AUC (top k)"] == "no value in 2 runs"


def test_the_thesis_tables_hold_the_printed_path():
    t = TABLE_6_3.set_index("experiment")
    assert list(t.index) == list(range(1, 14)) and (t.loc[12:13, "table"] == "C.1").all()
    toggles = ["dataset", "lr", "batch_size", "optimizer", "augment", "dropout", "sampling", "class_weights", "bias"]

    def changed(a, b):
        return {c for c in toggles if t.loc[a, c] != t.loc[b, c]}

    # the bold cells of Table 6.3 / C.1: what each step of the path changed (6.3.1, C.2)
    assert changed(1, 2) == {"dataset"} and changed(2, 3) == {"dropout"} and changed(3, 4) == {"augment"}
    assert changed(3, 5) == {"lr"} and changed(3, 6) == {"batch_size"} and changed(6, 7) == {"class_weights", "bias"}
    assert changed(7, 8) == {"optimizer"} and changed(8, 9) == {"sampling"} and changed(9, 10) == {"batch_size"}
    assert changed(10, 11) == {"dataset"} and changed(11, 12) == changed(11, 13) == {"lr"}
    assert t.loc[11, "auc"] == t["auc"].max() == 0.92676                  # the grey (best) line
    from pe_utils.data.splits import TRAIN_FRACTIONS
    assert TRAIN_FRACTIONS_6_4 == tuple(round(100 * f, 2) for f in TRAIN_FRACTIONS)
    sup, con = (TABLE_6_4[TABLE_6_4.method == m].set_index("train_fraction") for m in ("supervised", "contrastive"))
    assert sup.auc.idxmax() == 20 and con.auc.idxmax() == 66.66 and con.f1.idxmax() == 66.66   # the bold cells
    assert (sup.n_runs == 3).all() and (con.n_runs == 2).all()


def test_fraction_curves_draw_intervals_and_the_thesis():
    from pe_utils.report.figures_case2 import fraction_curves

    runs = case24_runs(_runs())
    fig = fraction_curves(fraction_summary(runs), TABLE_6_4)
    names = [t.name for t in fig.data]
    assert names.count("supervised (ours)") == 2 and names.count("contrastive (thesis)") == 2
    sup = next(t for t in fig.data if t.name == "supervised (ours)")
    assert list(sup.x) == ["100", "66.66", "5"]
    half = T_975_DF2 * 0.02 / math.sqrt(3)
    assert sup.error_y.array[0] == pytest.approx(half) and sup.error_y.arrayminus[0] == pytest.approx(half)
    assert sup.error_y.array[1] == 0                                                   # one seed: no bar
    thesis = next(t for t in fig.data if t.name == "supervised (thesis)")
    assert thesis.line.dash == "dash" and len(thesis.x) == 11
    assert list(fig.layout.xaxis.categoryarray)[:3] == ["100", "90", "80"]
    empty = fraction_curves(fraction_summary(case24_runs(pd.DataFrame())), TABLE_6_4)
    assert {t.name for t in empty.data} == {"supervised (thesis)", "contrastive (thesis)"}


def test_paired_figure_shows_the_difference_around_zero():
    from pe_utils.report.figures_case2 import paired_figure

    fig = paired_figure(paired_comparison(case24_runs(_runs())))
    auc = next(t for t in fig.data if t.name == "AUC")
    assert list(auc.x) == ["100", "66.66"]                     # 5 % has no pair: no point
    assert auc.y[0] == pytest.approx(0.035) and auc.error_y.array[1] == 0
    assert any(s.type == "line" and s.y0 == 0 for s in fig.layout.shapes)
    assert len(paired_figure(paired_comparison(case24_runs(pd.DataFrame()))).data) == 0


def test_ablation_summary_and_figure_set_ours_beside_the_thesis():
    from pe_utils.experiments.summary_case2 import ablation_summary
    from pe_utils.report.figures_case2 import ablation_figure

    runs = case24_runs(pd.DataFrame([_run("case2", 100, s, a, experiment=3) for s, a in ((0, 0.7), (1, 0.8))]
                                    + [_run("case2", 100, 0, 0.9)]))           # a default run: not the ablation
    summary = ablation_summary(runs).set_index(["experiment", "metric"])
    assert list(summary.index.get_level_values(0).unique()) == [3]
    assert summary.loc[(3, "auc"), "mean"] == pytest.approx(0.75) and summary.loc[(3, "auc"), "n"] == 2
    fig = ablation_figure(ablation_summary(runs), TABLE_6_3)
    thesis, ours = fig.data
    assert len(thesis.x) == 13 and thesis.y[10] == 0.92676 and list(ours.x) == ["3"]
    assert ours.error_y.array[0] == pytest.approx(12.706204736174707 * np.std([0.7, 0.8], ddof=1) / math.sqrt(2))
    assert len(ablation_figure(ablation_summary(case24_runs(pd.DataFrame())), TABLE_6_3).data) == 1


def test_tta_figures_sit_beside_the_main_ones_where_runs_recorded_them():
    rows = [_run("case2", 100, s, a, auc_tta=a + 0.01, exam_auc_max_tta=a + 0.06) for s, a in ((0, 0.8), (1, 0.9))]
    rows += [_run("case4", 100, 0, 0.7)]                       # recorded without TTA
    runs = case24_runs(pd.DataFrame(rows))
    table = table_6_4(runs, TABLE_6_4)
    groups = list(dict.fromkeys(table.columns.get_level_values(0)))
    assert groups == ["AUC", "AUC (TTA)", "F1", "accuracy"]   # beside the AUC; no TTA F1 recorded
    assert table.loc["100", ("AUC (TTA)", "supervised (ours)")].startswith("0.860 \u00b1")
    assert table.loc["100", ("AUC (TTA)", "contrastive (ours)")] == "no value in 1 run"
    assert ("AUC (TTA)", "supervised (thesis)") not in table.columns   # Table 6.4 had no TTA
    exams = exam_level_table(runs)
    assert list(exams.columns) == ["image AUC", "image AUC (TTA)", "exam AUC (max)", "exam AUC (max, TTA)",
                                   "exam AUC (top k)"]
    assert exams.loc[("supervised", "100"), "image AUC"].startswith("0.850 \u00b1")
    # runs without any TTA figure: the tables as before
    plain = case24_runs(pd.DataFrame([_run("case2", 100, 0, 0.8)]))
    assert "AUC (TTA)" not in table_6_4(plain, TABLE_6_4).columns.get_level_values(0)
    assert list(exam_level_table(plain).columns) == ["image AUC", "exam AUC (max)", "exam AUC (top k)"]


@pytest.mark.parametrize("folders, words, better", [
    (["p/seed0", "p/seed1", "p/seed2"], "pretrained with its own seed", "contrastive better (n=3"),
    (["p/one", "p/one", "p/one"], "fine-tune one pretrained encoder", "contrastive better for one pretrained encoder"),
])
def test_the_verdict_says_whether_the_pretraining_varies_between_pairs(folders, words, better):
    """One encoder per seed: the pairs cover the pretraining's randomness; one for all: the verdict
    is about that encoder, and the notes say so."""
    from pe_utils.experiments.summary_case2_paired import pretraining_note

    rows = [_run("case2", 100, s, a) for s, a in ((0, 0.80), (1, 0.82), (2, 0.81))]
    rows += [_run("case4", 100, s, a, pretrained_from=f"{folder}/simclr.pt")
             for (s, a), folder in zip(((0, 0.90), (1, 0.93), (2, 0.91)), folders)]
    runs = case24_runs(pd.DataFrame(rows))
    assert words in pretraining_note(runs)
    assert any(words in n for n in case24_notes(runs, "thesis"))
    auc = paired_comparison(runs, metrics=("auc",)).iloc[0]
    assert auc["verdict"].startswith(better)
