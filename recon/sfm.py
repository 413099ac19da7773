"""Structure from motion with pycolmap: SIFT extraction, pair selection + matching, incremental (or global) mapping.

Why forward-moving walks (lund_street) fail with COLMAP's defaults: the initial pair must have a median triangulation angle
>= 16 deg (halved on retries) AND a relative motion that is not along the viewing direction (`init_max_forward_motion` 0.95,
never relaxed). In a forward walk every well-matched pair moves along the optical axis and far street points give angles of a
few degrees, so no pair qualifies except a stray wide pair. We therefore retry mapping with forward motion allowed, a 4 deg
initial angle, and more tolerant registration/triangulation thresholds, and keep whichever model registers more images.
"""
from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realsim.assets.errors import InputError
from realsim.assets.progress import ProgressFn, report

from .geodesy import lla_to_enu
from .inputs import StagedImages, default_threads, looks_sequential, single_camera

log = logging.getLogger("realsim.recon.sfm")

MATCHERS = ("auto", "exhaustive", "sequential", "spatial")
MAPPERS = ("incremental", "global")
PARTITIONS = ("auto", "on", "off")
EXTRACT_CHUNK = 10  # photos per COLMAP extraction call, at least
MATCH_BLOCK = 80  # pairs per COLMAP matching call, at least


@dataclass
class SfmOptions:
    """Knobs of the SfM run (defaults suit 10-500 photos on a CPU)."""

    matcher: str = "auto"  # auto | exhaustive | sequential | spatial (GPS)
    exhaustive_max: int = 60  # auto: exhaustive up to this many images
    overlap: int = 8  # sequential: match each image with the next `overlap` ones (+ quadratic steps)
    loop_neighbors: int = 5  # sequential: retrieval (bag-of-words) loop-closure pairs per image
    far_steps: bool = True  # sequential: also pair each image with far ones in doubling steps (cheap loop closure)
    spatial_neighbors: int = 12  # spatial/GPS: nearest images by GPS position
    max_num_features: int = 8192
    camera_model: str = "SIMPLE_RADIAL"
    single_camera: bool | None = None  # None: decide from EXIF
    num_threads: int = 0  # 0: all CPUs of this machine
    seed: int = 0
    min_registered: int = 3
    relaxed_init: str = "auto"  # auto (retry if not all registered) | always | never
    mapper: str = "incremental"  # incremental | global (GLOMAP: rotation averaging + global positioning, one BA)
    loop_check: bool = True  # sequential: drop aliased loop pairs (recon.loops: general geometry + neighbours agree)
    loop_min_inliers: int = 30  # sequential: inliers a loop pair (and its confirming neighbour) needs
    partition: str = "auto"  # incremental mapper: auto (sequences above partition_above photos) | on | off (partition_sfm)
    partition_above: int = 100  # auto: partitioned mapping for sequential matching of more photos than this
    chunk_size: int = 24  # partitioned: consecutive photos per chunk
    chunk_overlap: int = 8  # partitioned: photos a chunk shares with the next


@dataclass
class SfmResult:
    reconstruction: "object"  # pycolmap.Reconstruction (largest model, SfM frame)
    database: Path
    matcher: str
    n_images: int
    n_pairs: int
    attempts: list[dict] = field(default_factory=list)
    gps_enu: dict[str, np.ndarray] = field(default_factory=dict)  # image name -> [3] east/north/up metres (origin: first fix)
    gps_origin: tuple[float, float, float] | None = None
    loops: dict = field(default_factory=dict)  # recon.loops.LoopCheck.to_dict() of a sequential run


def quiet_colmap() -> None:
    """COLMAP logs INFO/WARNING through glog straight to stderr; the library must not print, so keep only errors."""
    import pycolmap

    pycolmap.logging.minloglevel = 2


def _threads(opts: SfmOptions) -> int:
    return opts.num_threads if opts.num_threads > 0 else default_threads()


def extract(staged: StagedImages, db: Path, opts: SfmOptions, progress: ProgressFn | None = None) -> None:
    """SIFT features of every staged image into a fresh COLMAP database."""
    import pycolmap

    quiet_colmap()
    single = opts.single_camera if opts.single_camera is not None else single_camera(staged)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = opts.camera_model
    eo = pycolmap.FeatureExtractionOptions()
    eo.num_threads = _threads(opts)
    eo.sift.max_num_features = opts.max_num_features
    mode = pycolmap.CameraMode.SINGLE if single else pycolmap.CameraMode.PER_IMAGE
    report(progress, "features", 0, len(staged.names))
    # Chunks so the progress bar moves; COLMAP adds each chunk's images to the same database. Each call costs ~0.2 s of
    # setup (30 photos at 480x360: 8.1 s in chunks of 3, 5.8 s in one call), hence at least EXTRACT_CHUNK photos a call.
    chunk = max(EXTRACT_CHUNK, math.ceil(len(staged.names) / 10))
    cam_id = -1
    for i in range(0, len(staged.names), chunk):
        r = pycolmap.ImageReaderOptions()
        r.camera_model = reader.camera_model
        if single and cam_id > 0:
            r.existing_camera_id = cam_id
        pycolmap.extract_features(db, staged.folder, image_names=staged.names[i:i + chunk], camera_mode=mode, reader_options=r,
                                  extraction_options=eo, device=pycolmap.Device.cpu)
        if single and cam_id < 0:
            with pycolmap.Database.open(str(db)) as d:
                cam_id = d.read_all_cameras()[0].camera_id
        report(progress, "features", min(i + chunk, len(staged.names)), len(staged.names))


def read_gps(db: Path) -> tuple[dict[str, np.ndarray], tuple[float, float, float] | None]:
    """GPS positions from the database's pose priors (COLMAP reads EXIF GPS), in local east/north/up metres."""
    import pycolmap

    with pycolmap.Database.open(str(db)) as d:
        names = {im.image_id: im.name for im in d.read_all_images()}
        priors = d.read_all_pose_priors()
    lla = {}
    for p in priors:
        if p.coordinate_system != pycolmap.PosePriorCoordinateSystem.WGS84 or not p.has_position():
            continue
        pos = np.asarray(p.position, dtype=np.float64)
        if np.isfinite(pos).all() and not (pos[0] == 0 and pos[1] == 0):
            name = names.get(p.corr_data_id.id)
            if name is not None:
                lla[name] = pos
    if not lla:
        return {}, None
    origin = lla[sorted(lla)[0]]
    return {n: lla_to_enu(v, origin) for n, v in lla.items()}, tuple(float(x) for x in origin)


def choose_matcher(names: list[str], opts: SfmOptions, from_video: bool, has_gps: bool) -> str:
    """auto: exhaustive for small sets, sequential (+ loop closure) for videos and numbered sequences, GPS-spatial else."""
    if opts.matcher != "auto":
        if opts.matcher not in MATCHERS:
            raise InputError(f"unknown matcher {opts.matcher!r} (choose from {', '.join(MATCHERS)})")
        if opts.matcher == "spatial" and not has_gps:
            raise InputError("--matcher spatial needs GPS positions in the images' EXIF; none found")
        return opts.matcher
    if len(names) <= opts.exhaustive_max and not from_video:
        return "exhaustive"
    if from_video or looks_sequential(names):
        return "sequential"
    if has_gps:
        return "spatial"
    return "exhaustive" if len(names) <= 4 * opts.exhaustive_max else "sequential"


def _bow_vectors(db: Path, ids: list[int], seed: int, per_image: int = 1000, max_pool: int = 40000) -> np.ndarray:
    """tf-idf bag-of-words vectors [N,K] from a vocabulary clustered on this scene's own SIFT descriptors.

    The vocabulary must be fine (about one word per dozen pooled descriptors): a coarse one makes every view of a textured
    scene look alike. Up to `per_image` descriptors per image keep the cost linear in the number of images.
    """
    import pycolmap

    rng = np.random.default_rng(seed)
    with pycolmap.Database.open(str(db)) as d:
        descs = []
        for i in ids:
            x = np.asarray(d.read_descriptors(i).data, dtype=np.float32)
            descs.append(x[rng.choice(len(x), per_image, replace=False)] if len(x) > per_image else x)
    pool = np.concatenate([x for x in descs if len(x)]) if any(len(x) for x in descs) else np.zeros((0, 128), np.float32)
    if len(pool) < 64:
        return np.zeros((len(ids), 1), np.float32)
    if len(pool) > max_pool:
        pool = pool[rng.choice(len(pool), max_pool, replace=False)]
    k = int(np.clip(len(pool) // 12, 64, 2000))
    centres = pool[rng.choice(len(pool), k, replace=False)].copy()
    for _ in range(5):  # a few Lloyd iterations are enough for retrieval
        assign = _nearest(pool, centres)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, pool)
        cnt = np.bincount(assign, minlength=k)
        centres[cnt > 0] = sums[cnt > 0] / cnt[cnt > 0, None]
    hist = np.stack([np.bincount(_nearest(x, centres), minlength=k) if len(x) else np.zeros(k) for x in descs]).astype(np.float32)
    idf = np.log(len(ids) / np.maximum((hist > 0).sum(0), 1)).astype(np.float32)
    v = hist * idf
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def _nearest(x: np.ndarray, c: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest centre for each row of x (chunked to bound memory)."""
    cc = (c * c).sum(1)
    return np.concatenate([(cc - 2 * x[i:i + chunk] @ c.T).argmin(1) for i in range(0, len(x), chunk)]) if len(x) else np.zeros(0, int)


def make_pairs(names: list[str], matcher: str, opts: SfmOptions, db: Path, gps: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """Image pairs to match, by name, for the chosen strategy."""
    n = len(names)
    pairs: set[tuple[int, int]] = set()
    if matcher == "exhaustive":
        pairs = {(i, j) for i in range(n) for j in range(i + 1, n)}
    elif matcher == "sequential":
        for i in range(n):
            for k in range(1, opts.overlap + 1):
                if i + k < n:
                    pairs.add((i, i + k))
            q = 1
            while opts.far_steps and q <= n:  # doubling steps reach far images cheaply
                if i + opts.overlap + q < n:
                    pairs.add((i, i + opts.overlap + q))
                q *= 2
        if opts.loop_neighbors > 0 and n > opts.overlap + 2:
            import pycolmap

            with pycolmap.Database.open(str(db)) as d:
                id_of = {im.name: im.image_id for im in d.read_all_images()}
            v = _bow_vectors(db, [id_of[x] for x in names], opts.seed)
            sim = v @ v.T
            cand: set[tuple[int, int]] = set()
            for i in range(n):
                far = [j for j in np.argsort(-sim[i]) if abs(j - i) > opts.overlap]
                for j in far[: opts.loop_neighbors]:
                    cand.add((min(i, int(j)), max(i, int(j))))
            pairs |= cand
            if opts.loop_check:  # the candidates' sequential neighbours, which confirm a loop (recon.loops)
                from .loops import loop_neighbour_pairs

                pairs |= loop_neighbour_pairs(cand, n, opts.overlap)
    if matcher == "spatial" or (gps and matcher == "sequential"):
        have = [i for i, x in enumerate(names) if x in gps]
        if len(have) >= 2:
            P = np.stack([gps[names[i]][:2] for i in have])  # horizontal only: GPS altitude is the noisiest axis
            D = np.linalg.norm(P[:, None] - P[None], axis=-1)
            # As a loop-closure supplement to sequential pairs a few GPS neighbours suffice (phone GPS is good to ~10 m).
            k = opts.spatial_neighbors if matcher == "spatial" else min(4, opts.spatial_neighbors)
            for a, i in enumerate(have):
                for b in np.argsort(D[a])[1: k + 1]:
                    j = have[int(b)]
                    pairs.add((min(i, j), max(i, j)))
        if matcher == "spatial":  # images without GPS fall back to their sequence neighbours
            for i in range(n):
                for k in range(1, 4):
                    if i + k < n and (names[i] not in gps or names[i + k] not in gps):
                        pairs.add((i, i + k))
    return [(names[i], names[j]) for i, j in sorted(pairs)]


def match(db: Path, pairs: list[tuple[str, str]], work: Path, opts: SfmOptions, progress: ProgressFn | None = None) -> None:
    """Match and geometrically verify the given pairs (in blocks, for progress)."""
    import pycolmap

    quiet_colmap()
    mo = pycolmap.FeatureMatchingOptions()
    mo.num_threads = _threads(opts)
    vo = pycolmap.TwoViewGeometryOptions()
    vo.ransac.random_seed = opts.seed
    block = max(MATCH_BLOCK, math.ceil(len(pairs) / 20))  # per call ~0.2 s of setup, as for extraction
    report(progress, "matching", 0, len(pairs))
    for i in range(0, len(pairs), block):
        f = work / "pairs.txt"
        f.write_text("".join(f"{a} {b}\n" for a, b in pairs[i:i + block]))
        po = pycolmap.ImportedPairingOptions()
        po.match_list_path = str(f)
        pycolmap.match_image_pairs(db, matching_options=mo, pairing_options=po, verification_options=vo, device=pycolmap.Device.cpu)
        report(progress, "matching", min(i + block, len(pairs)), len(pairs))


def _mapper_options(opts: SfmOptions, relaxed: bool):
    import pycolmap

    o = pycolmap.IncrementalPipelineOptions()
    o.num_threads = _threads(opts)
    o.random_seed = opts.seed
    o.mapper.random_seed = opts.seed
    o.triangulation.random_seed = opts.seed
    o.min_model_size = 3
    if relaxed:
        o.mapper.init_max_forward_motion = 1.0  # forward walks: every good pair moves along the optical axis
        o.mapper.init_min_tri_angle = 4.0
        o.mapper.abs_pose_min_num_inliers = 15
        o.mapper.abs_pose_min_inlier_ratio = 0.1
        o.mapper.filter_min_tri_angle = 0.5
        o.triangulation.min_angle = 0.5
        o.triangulation.ignore_two_view_tracks = False
    return o


def map_incremental(db: Path, image_dir: Path, work: Path, opts: SfmOptions, n_images: int,
                    progress: ProgressFn | None = None, image_names: list[str] | None = None) -> tuple[object, list[dict]]:
    """Incremental mapping (of `image_names` only, when given); retried with relaxed initialisation when the default run
    leaves images out. Largest model kept."""
    import pycolmap

    plans = {"never": [False], "always": [True], "auto": [False, True]}.get(opts.relaxed_init)
    if plans is None:
        raise InputError(f"relaxed_init must be auto, always or never, not {opts.relaxed_init!r}")
    best, attempts = None, []
    for relaxed in plans:
        out = work / ("mapped_relaxed" if relaxed else "mapped")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        count = [0]

        def on_image() -> None:
            count[0] += 1
            report(progress, "mapping", min(count[0], n_images), n_images, relaxed=int(relaxed))

        mo = _mapper_options(opts, relaxed)
        if image_names is not None:
            mo.image_names = list(image_names)
        pycolmap.set_random_seed(opts.seed)
        recs = pycolmap.incremental_mapping(db, image_dir, out, options=mo, next_image_callback=on_image)
        cand = max(recs.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()), default=None)
        n_reg = cand.num_reg_images() if cand is not None else 0
        err = cand.compute_mean_reprojection_error() if cand is not None and cand.num_points3D() else float("nan")
        attempts.append({"relaxed": relaxed, "registered": n_reg, "models": len(recs), "reproj_px": err})
        if cand is not None and (best is None or n_reg > best.num_reg_images()):
            best = cand
        if best is not None and best.num_reg_images() == n_images:
            break
    report(progress, "mapping", n_images, n_images)
    return best, attempts


def map_global(db: Path, image_dir: Path, work: Path, opts: SfmOptions, n_images: int,
               progress: ProgressFn | None = None) -> tuple[object, list[dict]]:
    """Global SfM (pycolmap's GLOMAP): all verified pairs at once, rotation averaging then global positioning and one
    bundle adjustment, so its cost does not grow with a registration order as incremental mapping's does. Largest model."""
    import pycolmap

    out = work / "mapped_global"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    o = pycolmap.GlobalPipelineOptions()
    o.num_threads = _threads(opts)
    o.random_seed = opts.seed
    o.min_model_size = 3
    o.mapper.num_threads = _threads(opts)
    o.mapper.random_seed = opts.seed
    report(progress, "mapping", 0, n_images, mapper="global")
    pycolmap.set_random_seed(opts.seed)
    recs = pycolmap.global_mapping(db, image_dir, out, options=o)
    best = max(recs.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()), default=None)
    n_reg = best.num_reg_images() if best is not None else 0
    err = best.compute_mean_reprojection_error() if best is not None and best.num_points3D() else float("nan")
    report(progress, "mapping", n_images, n_images, mapper="global")
    return best, [{"mapper": "global", "registered": n_reg, "models": len(recs), "reproj_px": err}]


def run_sfm(staged: StagedImages, work: Path, opts: SfmOptions, progress: ProgressFn | None = None) -> SfmResult:
    """Features -> pairs -> matches -> incremental (or global) mapping; returns the largest model (InputError if too few
    registered)."""
    import pycolmap

    if opts.mapper not in MAPPERS:
        raise InputError(f"unknown mapper {opts.mapper!r} (choose from {', '.join(MAPPERS)})")
    if opts.partition not in PARTITIONS:
        raise InputError(f"partition must be auto, on or off, not {opts.partition!r}")
    if opts.partition == "on" and opts.mapper != "incremental":
        raise InputError("partitioned mapping maps its chunks incrementally: use it with --mapper incremental")
    work.mkdir(parents=True, exist_ok=True)
    db = work / "database.db"
    db.unlink(missing_ok=True)
    pycolmap.set_random_seed(opts.seed)
    extract(staged, db, opts, progress)
    gps, origin = read_gps(db)
    with pycolmap.Database.open(str(db)) as d:
        names = sorted(im.name for im in d.read_all_images())
        empty = [im.name for im in d.read_all_images() if d.num_keypoints_for_image(im.image_id) == 0]
    if len(names) - len(empty) < 3:
        raise InputError(f"only {len(names) - len(empty)} image(s) have features; at least 3 textured views are needed")
    matcher = choose_matcher(names, opts, staged.from_video, len(gps) >= 0.5 * len(names))
    pairs = make_pairs(names, matcher, opts, db, gps)
    match(db, pairs, work, opts, progress)
    loops = {}
    if matcher == "sequential" and opts.loop_check:
        from .loops import check_loops

        loops = check_loops(db, names, pairs, opts.overlap, opts.loop_min_inliers).to_dict()
    partitioned = opts.mapper == "incremental" and (opts.partition == "on" or (
        opts.partition == "auto" and matcher == "sequential" and len(names) > opts.partition_above))
    if partitioned:
        from .partition_sfm import map_partitioned

        rec, attempts = map_partitioned(db, staged.folder, work, opts, names, progress, gps)
    else:
        mapper = map_global if opts.mapper == "global" else map_incremental
        rec, attempts = mapper(db, staged.folder, work, opts, len(names), progress)
    n_reg = rec.num_reg_images() if rec is not None else 0
    need = max(3, opts.min_registered)
    if n_reg < need:
        raise InputError(f"reconstruction registered only {n_reg} of {len(names)} images (need {need}); try more overlap "
                         f"between photos, a larger --max-image-size, or --matcher exhaustive")
    return SfmResult(rec, db, matcher, len(names), len(pairs), attempts, gps, origin, loops)

