"""Fits the probes of probe_features.py (scikit-learn logistic regression, standardised).
Prompt probe: Do-Not-Answer + harmful look-alikes + agent-action-guard harmful against benign
look-alikes + agent-action-guard safe; scored on HarmBench against alarming-benign. Reply probe:
the layer and C chosen by 5-fold CV on the 347 training answers, scored on the 200 committed
HarmBench answers (crates/gpo-judge-train/data/defender_answers.jsonl) with a bootstrap interval."""
import numpy as np, os
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score, StratifiedKFold
D = "/work/runs/probe/"
def L(n): return np.load(D + n)
P = {k: L(f"p_{k}.npz") for k in ["dna", "hb", "look_h", "look_b", "alarming", "aag_h", "aag_b"] if os.path.exists(D + f"p_{k}.npz")}
for key in ["last6", "last12", "last18", "last24", "last30", "mean12", "mean18", "mean24"]:
    if "aag_b" not in P: break
    Xh = np.vstack([P["dna"][key], P["look_h"][key], P["aag_h"][key]]); Xb = np.vstack([P["look_b"][key], P["aag_b"][key]])
    X = np.vstack([Xh, Xb]); y = np.r_[np.ones(len(Xh)), np.zeros(len(Xb))]
    for C in [0.01, 0.1]:
        m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced")).fit(X, y)
        sh = m.predict_proba(P["hb"][key])[:, 1]; sa = m.predict_proba(P["alarming"][key])[:, 1]
        auc = roc_auc_score(np.r_[np.ones(len(sh)), np.zeros(len(sa))], np.r_[sh, sa])
        thr = np.quantile(sa, 0.9)
        print(f"prompt {key} C={C}: AUC hb-vs-alarming {auc:.3f}; hb flagged at 10% alarming FPR {np.mean(sh > thr):.3f}; at 0.5: hb {np.mean(sh>0.5):.3f} alarming {np.mean(sa>0.5):.3f}")
if os.path.exists(D + "r_hb.npz"):
    A, B = L("r_pool.npz"), L("r_hb.npz")
    ya = (A["y"] == "C").astype(int); yb = (B["y"] == "complies").astype(int)
A, B = np.load(D + "r_pool.npz"), np.load(D + "r_hb.npz")
ya = (A["y"] == "C").astype(int); yb = (B["y"] == "complies").astype(int)
res = []
for key in [k for k in A.files if k != "y"]:
    for C in [0.003, 0.01, 0.1]:
        m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced"))
        cv = cross_val_score(m, A[key], ya, cv=StratifiedKFold(5, shuffle=True, random_state=0), scoring="roc_auc").mean()
        test = roc_auc_score(yb, m.fit(A[key], ya).predict_proba(B[key])[:, 1])
        res.append((cv, key, C, test))
res.sort(reverse=True)
for r in res[:6]: print("cv %.3f  %s C=%g  test %.3f" % r)
# bootstrap CI of the chosen one
cv, key, C, test = res[0]
m = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000, class_weight="balanced")).fit(A[key], ya)
s = m.predict_proba(B[key])[:, 1]; rng = np.random.default_rng(0); bs = []
for _ in range(2000):
    i = rng.integers(0, len(yb), len(yb))
    if yb[i].min() != yb[i].max(): bs.append(roc_auc_score(yb[i], s[i]))
print("chosen by CV:", key, C, "test AUC %.3f [%.3f, %.3f]" % (test, *np.quantile(bs, [0.025, 0.975])))
