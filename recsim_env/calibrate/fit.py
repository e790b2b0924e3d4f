"""Fit the simulator (catalogue, users, choice weights, sessions, drift) to an interaction log.

The simulator's choice score is ``s = β·(u·x) + α·a − κ·(φ·x) − s0`` with item topics ``x`` on the
simplex (rows sum to 1), interests ``u ∈ [-1, 1]^K`` and appeal ``a`` of unit spread. The fit
estimates, by penalised maximum likelihood, the *utilities* the log identifies:

* per user a topic-utility vector ``w_u`` (the simulator's ``β·u_u − s0``: because ``Σ x = 1`` an
  intercept is a constant added to every ``w_u``), shrunk towards a population mean ``m`` with a
  Gaussian prior of standard deviation ``prior_sd`` (the simulator's users are ``μ + noise`` too);
* per item an effect ``e_i`` (the simulator's ``α·a_i``), shrunk towards 0 with the same prior, so that
  what topics explain goes to the users and only the item's own pull to its appeal.

With impressions (a ``click`` column) the likelihood is the logistic one of every shown item; with
positives only it is the conditional logit of each chosen item against ``negatives`` items drawn
uniformly from the catalogue (McFadden's sampling of alternatives: consistent for the slopes, while
anything common to all alternatives — the intercept ``s0``, a user's overall level — cancels).

``β``, ``α`` and ``s0`` then follow from *scale conventions*, because utilities only identify the
products ``β·u`` and ``α·a``: ``α`` = the standard deviation of the item effects (the simulator's
appeal has unit variance); ``β`` and ``s0`` map the central ``1 − 2q`` of all users' ``w`` entries onto
``[-1, 1]`` (the simulator's interests fill that box and are clipped at its ends), i.e. ``β`` = half the
spread between the ``q`` and ``1 − q`` quantiles and ``−s0`` their midpoint (impressions only; with
positives only ``s0`` is not identified and keeps its default).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from recsim_env.calibrate import sessions as sess
from recsim_env.config import SimConfig
from recsim_env.validation import check_choice, check_int, check_real, fail

TOPICS = ("factorised", "categories")
APPEAL_CLIP = 3.0
RATING_PRIOR = 10.0  # shrinkage of an item's mean rating towards the global mean, in ratings
DEFAULTS = SimConfig()


# ------------------------------------------------------------------------------------ catalogue
def interaction_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> Any:
    """Binary user × item CSR matrix of the positives (a repeated pair counts once)."""
    from scipy import sparse

    mat = sparse.csr_matrix((np.ones(len(users)), (users, items)), shape=shape)
    mat.data[:] = 1.0
    return mat


def nmf_topics(
    matrix: Any, num_topics: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Item topic vectors (rows sum to 1) from scikit-learn's NMF of the user × item matrix, the user
    factors, the relative reconstruction error ‖A − WH‖ / ‖A‖ and the iterations used (of 400)."""
    import warnings

    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    model = NMF(n_components=num_topics, init="nndsvda", random_state=seed, max_iter=400, tol=1e-4)
    with warnings.catch_warnings():  # 400 iterations: the topics no longer move (ML-100K); said in
        warnings.simplefilter("ignore", ConvergenceWarning)  # the report through n_iter_
        w = model.fit_transform(matrix)
    h = model.components_.T  # (M, K)
    total = h.sum(axis=1, keepdims=True)
    topics = np.where(total > 0, h / np.where(total > 0, total, 1.0), 1.0 / num_topics)
    norm = float(np.sqrt(matrix.multiply(matrix).sum()))
    return topics, w, float(model.reconstruction_err_ / max(norm, 1e-12)), int(model.n_iter_)


def _binary(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> Any:
    return interaction_matrix(users, items, shape)


def topic_count(log: Any, *, max_topics: int = 20, draws: int = 3, seed: int = 0) -> dict[str, Any]:
    """How many topics the log's choices support: Horn's parallel analysis of the binary user × item
    matrix of positives.

    The singular values of the real matrix are compared with those of null matrices that keep every
    user's number of choices and draw the items by their popularity (no taste structure left). The
    first singular value is the shared popularity direction in both; every later real one above the
    null's largest (over ``draws``) is a taste dimension. Because topic vectors sum to 1, ``K`` topics
    give the mean direction + ``K − 1`` contrasts, so ``K`` = 1 + the number of leading singular
    values (after the first) above the null. Why not an NMF error elbow: with short histories the
    error curve of a sparse 0/1 matrix falls almost linearly in ``k`` (noise fitting), with no elbow."""
    from scipy.sparse.linalg import svds

    max_topics = check_int("max_topics", max_topics, 2)
    draws = check_int("draws", draws, 1)
    df = _positives(log.interactions)
    u, _ = pd.factorize(df["user"], sort=True)
    i, _ = pd.factorize(df["item"], sort=True)
    shape = (int(u.max()) + 1, int(i.max()) + 1)
    kmax = min(max_topics, min(shape) - 1)
    if kmax < 2:
        return {"num_topics": 1, "singular_values": [], "null_singular_values": []}

    def top(mat: Any) -> np.ndarray:
        v0 = np.ones(min(mat.shape))  # deterministic start vector (ARPACK's default is random)
        return np.sort(svds(mat.astype(np.float64), k=kmax, v0=v0)[1])[::-1]

    real = top(_binary(u, i, shape))
    rng = np.random.default_rng(seed)
    pop = np.bincount(i, minlength=shape[1]) / len(i)
    null = np.max(
        [top(_binary(u, rng.choice(shape[1], size=len(i), p=pop), shape)) for _ in range(draws)],
        axis=0,
    )
    above = real[1:] > null[1:]
    extra = int(np.argmin(above)) if not above.all() else len(above)
    return {
        "num_topics": 1 + extra,
        "singular_values": real.tolist(),
        "null_singular_values": null.tolist(),
    }


def category_topics(log: Any, item_ids: np.ndarray) -> np.ndarray:
    """Item topic vectors from the log's category columns (multi-hot or weights), rows summing to 1;
    an item without any category gets the uniform vector."""
    cols = list(log.category_columns)
    if log.items is None or not cols:
        fail("topics", "categories", "'factorised' for a log without items/category_columns")
    table = log.items.reindex(item_ids)[cols].fillna(0.0).to_numpy(np.float64)
    table = np.maximum(table, 0.0)
    total = table.sum(axis=1, keepdims=True)
    return np.where(total > 0, table / np.where(total > 0, total, 1.0), 1.0 / len(cols))


def _positives(df: pd.DataFrame) -> pd.DataFrame:
    return df.loc[df["click"] == 1] if "click" in df.columns else df


# ------------------------------------------------------------------------------- choice model
def fit_utilities(
    users: np.ndarray,
    items: np.ndarray,
    click: np.ndarray | None,
    topics: np.ndarray,
    num_users: int,
    *,
    negatives: int = 32,
    prior_sd: float = 2.0,
    seed: int = 0,
    max_iter: int = 50,
    tol: float = 1e-6,
) -> dict[str, Any]:
    """Penalised ML of user topic utilities ``w`` (N, K), their mean ``m`` and item effects ``e``.

    ``click`` given: logistic likelihood of the rows (impressions). ``click=None``: every row is a
    choice, scored by a conditional logit against ``negatives`` uniformly drawn items.

    Solver: block-coordinate Newton on the (convex) negative log posterior: all users' ``K × K``
    Newton systems at once (batched solve), then the items' effects (diagonal Newton), then ``m`` in
    closed form, each step with backtracking; until the relative decrease is below ``tol``. Why not
    one L-BFGS over everything: the users' weakly identified directions made it creep for hundreds of
    iterations (ML-100K: 500 iterations, 5 minutes, not converged); block Newton converges in tens of
    sweeps. Everything is vectorised: scores through the dense ``N × M`` utility table ``W·Xᵀ`` and
    flat gathers, residuals aggregated with ``bincount`` (fine up to ~10^7 user-item cells)."""
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    n, (mi, k) = num_users, topics.shape
    lam = 1.0 / prior_sd**2
    width = negatives + 1
    if click is None:
        rng = np.random.default_rng(seed)
        alt = np.concatenate(
            [items[:, None], rng.integers(0, mi, (len(items), negatives))], axis=1
        )  # (R, 1 + J): the choice first
        row_user = np.repeat(users, width)
        row_item = alt.ravel()
        by_user = sparse.csr_matrix(
            (np.ones(len(users)), (users, np.arange(len(users)))), shape=(n, len(users))
        )
    else:
        row_user, row_item = users, items
        y = click.astype(np.float64)
    flat = row_user.astype(np.int64) * mi + row_item
    xx = (topics[:, :, None] * topics[:, None, :]).reshape(mi, k * k)

    def table(values: np.ndarray) -> np.ndarray:
        return np.bincount(flat, weights=values, minlength=n * mi).reshape(n, mi)

    def likelihood(w: np.ndarray, e: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Negative log likelihood, residuals g = ∂/∂s and probabilities per row."""
        s = (w @ topics.T + e).ravel()[flat]
        if click is None:
            s = s.reshape(-1, width)
            top = s.max(axis=1, keepdims=True)
            z = np.exp(s - top)
            total = z.sum(axis=1, keepdims=True)
            nll = float(np.sum(np.log(total[:, 0]) + top[:, 0] - s[:, 0]))
            p = z / total
            g = p.copy()
            g[:, 0] -= 1.0
            return nll, g.ravel(), p.ravel()
        p = 0.5 * (1.0 + np.tanh(0.5 * s))
        return float(np.sum(np.logaddexp(0.0, s) - y * s)), p - y, p

    def posterior(w: np.ndarray, m: np.ndarray, e: np.ndarray) -> float:
        d = w - m
        prior = 0.5 * lam * (float(np.sum(d * d)) + float(e @ e)) + 0.5e-6 * float(m @ m)
        return likelihood(w, e)[0] + prior

    def user_hessian(p: np.ndarray) -> np.ndarray:
        if click is None:
            h = (table(p) @ xx).reshape(n, k, k)
            v = np.einsum(
                "rc,rck->rk", p.reshape(-1, width), topics[row_item].reshape(-1, width, k)
            )
            for j in range(k):  # − Σ v vᵀ per user, one column at a time (no R × K² temporary)
                h[:, :, j] -= by_user @ (v * v[:, j : j + 1])
        else:
            h = (table(p * (1.0 - p)) @ xx).reshape(n, k, k)
        return h + lam * np.eye(k)

    def backtrack(f0: float, params: list[np.ndarray], which: int, direction: np.ndarray) -> float:
        """Newton step on ``params[which]``, halved until the posterior does not get worse."""
        start, step = params[which], 1.0
        for _ in range(20):
            params[which] = start - step * direction
            f = posterior(*params)
            if f <= f0:
                return f
            step *= 0.5
        params[which] = start
        return f0

    w = np.zeros((n, k))
    m = np.zeros(k)
    # Start the item effects at their no-taste solution (log popularity, or the logit of the click
    # rate) so that the sweeps spend their work on the users.
    chosen = np.bincount(items if click is None else items[click == 1], minlength=mi) + 0.5
    if click is None:
        e = np.log(chosen / chosen.mean())
    else:
        e = np.log(chosen / (np.bincount(items, minlength=mi) + 1.0 - chosen + 0.5))
    # Item effects are kept orthogonal to the topic columns: a shift of every user's utility by c
    # and of every item's effect by −x·c leaves all scores unchanged, a flat ridge that only the
    # prior's weak curvature resolves and along which coordinate sweeps creep; projecting it out puts
    # what topics explain in the users (their mean m) and leaves the item effects only what they do
    # not (x rows sum to 1, so this also centres e).
    basis = np.linalg.qr(topics)[0]

    def orthogonal(v: np.ndarray) -> np.ndarray:
        return v - basis @ (basis.T @ v)

    e = orthogonal(e)
    sweeps, converged = 0, False
    params = [w, m, e]
    with threadpool_limits(limits=1, user_api="blas"):
        # small products (N × K by K × M): BLAS threads cost more than they save (measured 3x
        # slower with them on 2 shared cores)
        f = posterior(*params)
        while sweeps < max_iter and not converged:
            sweeps += 1
            f_start = f
            w, m, e = params
            _, g, p = likelihood(w, e)
            grad_w = table(g) @ topics + lam * (w - m)
            delta = np.linalg.solve(user_hessian(p), grad_w[:, :, None])[:, :, 0]
            f = backtrack(f, params, 0, delta)
            w = params[0]
            _, g, p = likelihood(w, e)
            d_e = orthogonal(
                (table(g).sum(axis=0) + lam * e) / (table(p * (1 - p)).sum(axis=0) + lam)
            )
            f = backtrack(f, params, 2, d_e)
            params[1] = w.sum(axis=0) * lam / (n * lam + 1e-6)  # m: closed form
            f = posterior(*params)
            converged = f_start - f <= tol * max(abs(f_start), 1.0)
        w, m, e = params
        _, _, p = likelihood(w, e)
        hess = user_hessian(p)
    return {
        "w": w,
        "m": m,
        "e": e,
        # Laplace approximation: each user's posterior sd per topic (diagonal of the inverse
        # Hessian): how well a real user's interest is known (→ user_noise)
        "posterior_sd": np.sqrt(np.diagonal(np.linalg.inv(hess), axis1=1, axis2=2)),
        "iterations": sweeps,
        "converged": converged,
        "nll": f,
        "rows": len(row_user),
    }


def choice_mle(
    interest_score: np.ndarray, appeal: np.ndarray, click: np.ndarray
) -> dict[str, float]:
    """ML of ``click ~ Bernoulli(sigmoid(β·(u·x) + α·a − s0))`` given the features: scikit-learn's
    LogisticRegression without penalty. Returns β, α, s0 and their standard errors (inverse Fisher
    information)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    feats = np.column_stack([interest_score, appeal]).astype(np.float64)
    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    # no penalty: spelled C=inf since scikit-learn 1.8 (penalty=None is deprecated there)
    unpenalised = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
    model = LogisticRegression(max_iter=1000, tol=1e-8, **unpenalised).fit(feats, click)
    beta, alpha = (float(c) for c in model.coef_[0])
    s0 = -float(model.intercept_[0])
    design = np.column_stack([feats, np.ones(len(feats))])
    p = model.predict_proba(feats)[:, 1]
    cov = np.linalg.inv(design.T @ (design * (p * (1 - p))[:, None]))
    se = np.sqrt(np.diag(cov))
    return {
        "interest_weight": beta,
        "appeal_weight": alpha,
        "click_threshold": s0,
        "se_interest_weight": float(se[0]),
        "se_appeal_weight": float(se[1]),
        "se_click_threshold": float(se[2]),
    }


# ------------------------------------------------------------------------------------- fit
def _window_seconds(window: Any) -> float:
    if isinstance(window, str):
        try:
            seconds = pd.Timedelta(window).total_seconds()
        except ValueError:
            fail("window", window, "a pandas Timedelta string such as '7D' or seconds > 0")
    else:
        seconds = check_real("window", window, 0.0, lo_open=True)
    if not seconds > 0:
        fail("window", window, "a positive duration")
    return float(seconds)


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_json(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _ids(values: pd.Index) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    return arr.astype(str)


def fit(
    log: Any,
    *,
    num_topics: int | str = 16,
    topics: str = "factorised",
    seed: int = 0,
    window: Any = "7D",
    window_ticks: int = 1000,
    session_gap: float = sess.DEFAULT_GAP_SECONDS,
    negatives: int = 32,
    prior_sd: float = 2.0,
    interest_quantile: float = 0.02,
    name: str | None = None,
) -> Any:
    """Fit a :class:`~recsim_env.grounding.Calibration` to an :class:`InteractionLog`.

    ``topics``: ``"factorised"`` (NMF of the user × item matrix of positives, ``num_topics``) or
    ``"categories"`` (the log's category columns; ``num_topics`` is then their number);
    ``num_topics="auto"``: chosen by :func:`topic_count`. Time: the
    simulator's clock runs ``window_ticks`` ticks per ``window`` of log time (one tick =
    ``window / window_ticks`` seconds), clock 0 = the log's first timestamp. ``session_gap``: seconds
    of inactivity that end a session. See the module docstring for the choice model's conventions and
    ``Calibration.report`` for what was fitted from what."""
    from recsim_env.grounding import Calibration

    started = time.perf_counter()
    topics = check_choice("topics", topics, TOPICS)
    count = None
    if num_topics == "auto":
        count = topic_count(log, seed=seed)
        num_topics = count["num_topics"]
    num_topics = check_int("num_topics", num_topics, 1)
    window_ticks = check_int("window_ticks", window_ticks, 1)
    negatives = check_int("negatives", negatives, 1)
    prior_sd = check_real("prior_sd", prior_sd, 0.0, lo_open=True)
    interest_quantile = check_real("interest_quantile", interest_quantile, 0.0, 0.5, hi_open=True)
    session_gap = check_real("session_gap", session_gap, 0.0)
    window_seconds = _window_seconds(window)
    tick_seconds = window_seconds / window_ticks
    df = log.interactions
    if len(df) == 0:
        fail("log", f"<{len(df)} interactions>", "a log with at least one interaction")
    impressions = "click" in df.columns
    uidx, user_index = pd.factorize(df["user"], sort=True)
    iidx, item_index = pd.factorize(df["item"], sort=True)
    n, mi = len(user_index), len(item_index)
    pos = df["click"].to_numpy() == 1 if impressions else np.ones(len(df), bool)
    if not pos.any():
        fail("log", "<no clicks>", "a log with at least one chosen item (click == 1)")
    report: dict[str, Any] = {"log": {"name": getattr(log, "name", "log"), "rows": len(df)}}
    not_identified: dict[str, Any] = {}

    # --- catalogue: topics
    if topics == "factorised":
        mat = interaction_matrix(uidx[pos], iidx[pos], (n, mi))
        x, _, err, nmf_iter = nmf_topics(mat, num_topics, seed)
        report["item_topics"] = {
            "from": "binary user x item matrix of the positives",
            "how": f"scikit-learn NMF (K={num_topics}, nndsvda, seed {seed}); columns of H "
            "normalised to sum 1",
            "estimate": {
                "num_topics": num_topics,
                "relative_reconstruction_error": err,
                "nmf_iterations": nmf_iter,
            },
        }
        if count is not None:
            report["num_topics"] = {
                "from": "singular values of the binary user x item matrix of positives",
                "how": "parallel analysis against degree-preserving null matrices (topic_count)",
                "estimate": count,
            }
    else:
        x = category_topics(log, np.asarray(item_index))
        num_topics = x.shape[1]
        report["item_topics"] = {
            "from": f"category columns {list(log.category_columns)}",
            "how": "multi-hot rows normalised to sum 1 (no category: uniform)",
            "estimate": {"num_topics": num_topics},
        }

    # --- choice model: user utilities and item effects by penalised ML
    if impressions:
        util = fit_utilities(uidx, iidx, df["click"].to_numpy(), x, n, prior_sd=prior_sd, seed=seed)
    else:
        util = fit_utilities(
            uidx[pos], iidx[pos], None, x, n, negatives=negatives, prior_sd=prior_sd, seed=seed
        )
    w, e = util["w"], util["e"]
    shown = np.bincount(iidx, minlength=mi)
    chosen = np.bincount(iidx[pos], minlength=mi)
    e_mean = float(e.mean())
    alpha = float(e.std())
    appeal = np.clip((e - e_mean) / max(alpha, 1e-12), -APPEAL_CLIP, APPEAL_CLIP)
    lo, hi = np.quantile(w, [interest_quantile, 1.0 - interest_quantile])
    beta = float(max((hi - lo) / 2.0, 1e-6))
    mid = float((hi + lo) / 2.0)
    interest = np.clip((w - mid) / beta, -1.0, 1.0)
    params: dict[str, Any] = {"interest_weight": beta, "appeal_weight": alpha}
    log_pop = np.log1p(chosen)
    pop_rank = float(pd.Series(appeal).corr(pd.Series(log_pop), method="spearman"))
    how = (
        "logistic likelihood of every impression"
        if impressions
        else f"conditional logit of each choice against {negatives} uniformly sampled items"
    )
    report["choice_model"] = {
        "from": f"{int(pos.sum())} choices"
        + (f" among {len(df)} impressions" if impressions else ""),
        "how": f"penalised ML (block Newton, prior sd {prior_sd}) of user topic utilities w_u ~ "
        f"N(m, prior_sd^2) and item effects e_i ~ N(0, prior_sd^2): {how}",
        "estimate": {
            "iterations": util["iterations"],
            "converged": util["converged"],
            "neg_log_posterior": util["nll"],
            "population_mean_utility": util["m"],
        },
    }
    report["interest_weight"] = {
        "from": "the fitted user utilities w",
        "how": f"scale convention: half the spread between the {interest_quantile:g} and "
        f"{1 - interest_quantile:g} quantiles of all w entries (interests then fill [-1, 1] like "
        "the simulator's, clipped at the ends)",
        "estimate": beta,
    }
    report["appeal_weight"] = {
        "from": "the fitted item effects e",
        "how": "scale convention: standard deviation of e (the simulator's appeal has unit variance)",
        "estimate": alpha,
    }
    if impressions:
        s0 = float(-(mid + e_mean))
        params["click_threshold"] = s0
        report["click_threshold"] = {
            "from": "the level of the fitted utilities (impressions identify it)",
            "how": "-(midpoint of the interest quantiles + mean item effect)",
            "estimate": s0,
        }
    else:
        not_identified["click_threshold"] = {
            "default": DEFAULTS.click_threshold,
            "why": "with positives only, the choices are scored against sampled non-chosen items: "
            "anything common to all alternatives (the intercept s0, a user's overall level) "
            "cancels from the conditional likelihood",
        }
    report["item_appeal"] = {
        "from": "chosen vs " + ("shown" if impressions else "sampled") + " items",
        "how": "item effects e standardised (mean 0, sd 1), clipped to [-3, 3]: popularity "
        "corrected for exposure"
        + (" (click rate, not count)" if impressions else "")
        + " and for what the items' topics already explain",
        "estimate": {
            "spearman_with_log_popularity": pop_rank,
            "mean_shown": float(shown.mean()),
            "mean_chosen": float(chosen.mean()),
        },
    }
    report["user_interest"] = {
        "from": "the fitted user utilities w",
        "how": "u = clip((w - midpoint) / interest_weight, -1, 1)",
        "estimate": {
            "mean": interest.mean(axis=0),
            "share_clipped": float(np.mean(np.abs((w - mid) / beta) > 1.0)),
        },
    }
    noise = float(np.median(util["posterior_sd"]) / beta)
    params["user_noise"] = float(np.clip(noise, 0.0, 1.0))
    report["user_noise"] = {
        "from": "the fitted users' posterior uncertainty",
        "how": "median Laplace posterior sd of w entries / interest_weight: a new simulated user "
        "drawn from a real one varies as much as that user's interest is uncertain",
        "estimate": params["user_noise"],
    }

    # --- quality from ratings
    if "rating" in df.columns:
        r = df["rating"].to_numpy(np.float64)
        rated = np.isfinite(r) & pos
        r_sum = np.bincount(iidx[rated], weights=r[rated], minlength=mi)
        r_n = np.bincount(iidx[rated], minlength=mi)
        overall = float(r[rated].mean())
        shrunk = (r_sum + RATING_PRIOR * overall) / (r_n + RATING_PRIOR)
        sd = float(shrunk.std())
        quality = np.clip((shrunk - shrunk.mean()) / max(sd, 1e-12), -APPEAL_CLIP, APPEAL_CLIP)
        corr = float(np.corrcoef(quality, appeal)[0, 1]) if mi > 2 else 0.0
        params["quality_appeal_corr"] = float(np.clip(np.nan_to_num(corr), -1.0, 1.0))
        report["item_quality"] = {
            "from": "ratings",
            "how": f"mean rating shrunk towards the global mean ({RATING_PRIOR:g} pseudo-ratings), "
            "standardised, clipped to [-3, 3]",
            "estimate": {"global_mean_rating": overall, "rated_items": int((r_n > 0).sum())},
        }
        report["quality_appeal_corr"] = {
            "from": "fitted quality and appeal",
            "how": "Pearson correlation over items",
            "estimate": params["quality_appeal_corr"],
        }
    else:
        quality = np.zeros(mi)
        not_identified["item_quality"] = {
            "default": 0.0,
            "why": "no ratings in the log: the simulator's mean quality (0) for every item",
        }
        not_identified["quality_appeal_corr"] = {
            "default": DEFAULTS.quality_appeal_corr,
            "why": "no ratings: quality is not observed",
        }
    not_identified["item_length"] = {
        "default": 1.0,
        "why": "no durations in the log: every item the simulator's mean length",
    }

    # --- time: births, sessions, drift
    t = df["timestamp"].to_numpy(np.float64)
    t0 = float(t.min())
    first_seen = pd.Series(t).groupby(iidx).min().reindex(range(mi)).to_numpy()
    birth = np.round((first_seen - t0) / tick_seconds).astype(np.int64)
    in_first_window = first_seen < t0 + window_seconds
    birth[in_first_window] = -window_ticks
    report["item_birth"] = {
        "from": "each item's first appearance in the log",
        "how": f"(first timestamp - log start) / tick_seconds ({tick_seconds:g} s per tick); items "
        f"first seen in the first window are the catalogue the log opens on: born "
        f"{window_ticks} ticks before the clock starts (their popularity already formed)",
        "estimate": {
            "present_at_start": int(in_first_window.sum()),
            "born_later": int((~in_first_window).sum()),
        },
    }
    stats = sess.session_stats(df, gap_seconds=session_gap, tick_seconds=tick_seconds)
    sp, sr = sess.session_params(stats)
    params.update(sp)
    report.update(sr)
    span_ticks = int(np.ceil((float(t.max()) - t0) / tick_seconds)) + 1
    params["lifetime_ticks"] = span_ticks
    report["lifetime_ticks"] = {
        "from": "the log's time span",
        "how": "observation window in ticks (a lifetime is capped where the log ends)",
        "estimate": span_ticks,
    }
    report["sessions"] = {
        "from": "timestamps",
        "how": f"per-user inactivity gap > {session_gap:g} s starts a session",
        "estimate": {
            "num_sessions": stats["num_sessions"],
            "sessions_per_user": stats["sessions_per_user"],
            "length_mean": stats["length_mean"],
            "length_quartiles": stats["length_quartiles"],
        },
    }
    win = np.floor((t[pos] - t0) / window_seconds).astype(np.int64)
    num_windows = int(win.max()) + 1
    from scipy import sparse

    counts = sparse.csr_matrix(
        (np.ones(len(win)), (win, uidx[pos])), shape=(num_windows, n)
    )  # choices per window and user
    weight = np.asarray(counts.sum(axis=1))[:, 0]
    traj = np.asarray(counts @ interest) / np.maximum(weight, 1.0)[:, None]
    for j in range(1, num_windows):  # a window nobody was active in keeps the previous mean
        if weight[j] == 0:
            traj[j] = traj[j - 1]
    report["trajectory"] = {
        "from": "choices per time window",
        "how": f"activity-weighted mean of the fitted interests of the users active in each "
        f"{window!s} window ({window_ticks} ticks each)",
        "estimate": {
            "windows": num_windows,
            "max_change_between_windows": float(np.abs(np.diff(traj, axis=0)).max())
            if num_windows > 1
            else 0.0,
        },
    }
    activity = np.bincount(uidx[pos], minlength=n).astype(np.float64)
    report["user_activity"] = {
        "from": "choices per user",
        "how": "share of all choices: a new simulated user is real user j with this probability",
        "estimate": {"users": n, "max_share": float(activity.max() / activity.sum())},
    }

    for field, why in {
        "fatigue_weight": "the fit has no fatigue state (the log would need the full exposure "
        "sequence and fatigue_decay, neither identified)",
        "fatigue_decay": "see fatigue_weight",
        "exposure_fatigue": "see fatigue_weight",
        "interest_lr": "users are fitted as static over the log (one interest per user)",
        "disappointment_quality": "see interest_lr",
        "drift_pull": "the population path is replayed (trajectory); how fast live users follow it "
        "is not separable from who is active",
        "return_sensitivity": "satisfaction is not in the log: the link of return to satisfaction "
        "is not identified, only the spread of return rates and gaps across users",
        "satisfaction_rate": "satisfaction is not in the log",
        "clickbait_penalty": "satisfaction is not in the log",
        "budget_refund": "session lengths are fitted as budgets directly",
        "quality_engagement": "no engagement / watch time in the log",
        "satisfaction_engagement": "no engagement / watch time in the log",
        "max_session_steps": "a cap, not a behaviour",
        "position_bias": "no positions in the log",
    }.items():
        not_identified[field] = {"default": getattr(DEFAULTS, field), "why": why}
    if not impressions:
        not_identified["budget_min/max (scale)"] = {
            "default": "session lengths in choices",
            "why": "with positives only the steps without a click are not logged: budgets are "
            "lengths in choices, a lower bound on steps",
        }
    report["not_identified"] = not_identified
    elapsed = time.perf_counter() - started
    report["fit_seconds"] = elapsed
    report["time"] = {"tick_seconds": tick_seconds, "window_seconds": window_seconds}

    return Calibration(
        name=str(name or getattr(log, "name", "log")),
        item_ids=_ids(item_index),
        item_topics=x.astype(np.float32),
        item_quality=quality.astype(np.float32),
        item_appeal=appeal.astype(np.float32),
        item_length=np.ones(mi, np.float32),
        item_birth=birth,
        user_ids=_ids(user_index),
        user_interest=interest.astype(np.float32),
        user_activity=activity / activity.sum(),
        trajectory=traj.astype(np.float32),
        window_ticks=int(window_ticks),
        params={k: (float(v) if not isinstance(v, int) else v) for k, v in params.items()},
        report=_json(report),
    )
