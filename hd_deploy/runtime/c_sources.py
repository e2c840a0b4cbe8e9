"""The C the toolkit compiles beside a controller: timing, the observation, the whole step.

Plain strings, shared by :mod:`hd_deploy.runtime.native` (which builds them) and
:mod:`hd_deploy.runtime.native_step` (which calls them).
"""

from __future__ import annotations

#: Linked beside the controller when timing it inside C: ``hd_bench_ns(obs, ctrl, n)``,
#: the mean wall time of ``n`` back-to-back ``hd_act`` calls, nanoseconds.
TIMING_SOURCE = """#define _POSIX_C_SOURCE 199309L
#include <time.h>
void hd_act(const float *obs, float *ctrl);
double hd_bench_ns(const float *obs, float *ctrl, long n) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long k = 0; k < n; ++k) hd_act(obs, ctrl);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / (double)n;
}
"""


#: The per-limb observation (see :mod:`hd_deploy.morphology.features`) from ``mjData``'s
#: arrays; the context struct holds every pointer and index, set up once per ``mjData``.
OBSERVATION_SOURCE = """/* hd_deploy per-limb observation, 17 floats per limb (generated). */
typedef struct {
    int n_limbs, torso, nq, nv;
    const int *body, *root, *qadr, *dadr; /* per limb; per limb x 2 slots (-1: none) */
    const double *lo, *inv_span;           /* per limb x 2 slots */
    const double *xpos, *xquat, *xipos, *cvel, *subtree_com, *qpos, *qvel;
} hd_obs_ctx;

/* Returns 1 when the state (qpos, qvel) and the observation are finite, else 0. */
int hd_observe(const hd_obs_ctx *c, float *out) {
    double finite = 0.0; /* x - x is 0 for a finite x, NaN for inf or NaN; NaN sticks */
    for (int i = 0; i < c->nq; ++i) finite += c->qpos[i] - c->qpos[i];
    for (int i = 0; i < c->nv; ++i) finite += c->qvel[i] - c->qvel[i];
    const double tx = c->xpos[3 * c->torso];
    for (int i = 0; i < c->n_limbs; ++i) {
        const double *p = c->xpos + 3 * c->body[i], *v = c->cvel + 6 * c->body[i];
        const double *ip = c->xipos + 3 * c->body[i], *com = c->subtree_com + 3 * c->root[i];
        const double *q = c->xquat + 4 * c->body[i];
        const double rx = ip[0] - com[0], ry = ip[1] - com[1], rz = ip[2] - com[2];
        float *o = out + 17 * i;
        o[0] = (float)(p[0] - tx);
        o[1] = (float)p[1];
        o[2] = (float)p[2];
        /* the velocity of the inertial frame: linear + angular x (xipos - subtree com) */
        o[3] = (float)(v[3] + v[1] * rz - v[2] * ry);
        o[4] = (float)(v[4] + v[2] * rx - v[0] * rz);
        o[5] = (float)(v[5] + v[0] * ry - v[1] * rx);
        o[6] = (float)v[0];
        o[7] = (float)v[1];
        o[8] = (float)v[2];
        o[9] = (float)q[0];
        o[10] = (float)q[1];
        o[11] = (float)q[2];
        o[12] = (float)q[3];
        for (int s = 0; s < 2; ++s) {
            const int k = 2 * i + s;
            const int has = c->qadr[k] >= 0;
            o[13 + 2 * s] = has ? (float)((c->qpos[c->qadr[k]] - c->lo[k]) * c->inv_span[k]) : 0.0f;
            o[14 + 2 * s] = has ? (float)c->qvel[c->dadr[k]] : 0.0f;
        }
        for (int j = 0; j < 17; ++j) finite += (double)(o[j] - o[j]);
    }
    return finite == 0.0;
}
"""


#: Linked beside a controller with :data:`TIMING_SOURCE`: ``hd_control``, a whole guarded
#: control step (observation, ``hd_act``, finiteness checks, ctrlrange clipping, the
#: controls written into ``mjData.ctrl``) in one call, each stage timed inside.
CONTROL_SOURCE = (
    OBSERVATION_SOURCE
    + """
static long long hd_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_nsec;
}

typedef struct {
    const hd_obs_ctx *obs_ctx;
    float *obs, *ctrl;
    double *mj_ctrl; /* mjData.ctrl, or NULL */
    const float *lo, *hi;
    long long *ns; /* the observation's and the policy's time */
    int n;
} hd_control_args;

/* One guarded control step (all arguments in one struct: one pointer to pass). The
   observation goes into obs, the controls into ctrl and, unless mj_ctrl is NULL, into
   mjData.ctrl. A non-finite state or observation (1) or controls (2) give zero control;
   controls outside [lo, hi] are clipped (3); else 0. */
int hd_control(const hd_control_args *a) {
    const hd_obs_ctx *c = a->obs_ctx;
    float *obs = a->obs, *ctrl = a->ctrl;
    double *mj_ctrl = a->mj_ctrl;
    const float *lo = a->lo, *hi = a->hi;
    long long *ns = a->ns;
    const int n = a->n;
    const long long t0 = hd_now_ns();
    const int ok = hd_observe(c, obs);
    const long long t1 = hd_now_ns();
    int status = 0;
    ns[0] = t1 - t0;
    ns[1] = 0;
    if (!ok) {
        status = 1;
    } else {
        double finite = 0.0;
        hd_act(obs, ctrl);
        ns[1] = hd_now_ns() - t1;
        for (int i = 0; i < n; ++i) finite += (double)(ctrl[i] - ctrl[i]);
        if (finite != 0.0) status = 2;
    }
    const int bad = status;
    for (int i = 0; i < n; ++i) {
        float v = bad ? 0.0f : ctrl[i];
        if (!bad && v < lo[i]) { v = lo[i]; status = 3; }
        if (!bad && v > hi[i]) { v = hi[i]; status = 3; }
        ctrl[i] = v;
        if (mj_ctrl) mj_ctrl[i] = (double)v;
    }
    return status;
}
"""
)
HARNESS_SOURCE = TIMING_SOURCE + CONTROL_SOURCE
