# Per-op-class profile of a Diffusers run, in the shape of `diffuse generate --profile`'s report
# (issue 6): for each section (text_encoder, unet_first_step, unet_step, vae_decode) the wall time,
# and the self CPU time of the aten operators inside it sorted into the same classes as ours:
# convolution, matmul, attention, normalization, elementwise, copy; "other_s" is what no class
# claims (Python, views, the scheduler); "operations" is the self time of each aten operator
# (a class's figure is the sum of its operators'). Used by make_sd15_random.py --bench --profile.
import torch

CLASSES = {
    "convolution": ("conv",),
    "matmul": ("addmm", "aten::mm", "bmm", "baddbmm", "aten::matmul", "aten::linear", "_addmm_activation"),
    "attention": ("scaled_dot_product", "flash_attention", "efficient_attention"),
    "normalization": ("group_norm", "layer_norm", "softmax", "rms_norm"),
    "copy": ("copy_", "aten::to", "_to_copy", "contiguous", "clone", "aten::cat", "upsample", "index_select",
             "embedding"),
    "elementwise": ("aten::add", "aten::mul", "aten::sub", "aten::div", "silu", "gelu", "sigmoid", "aten::neg",
                    "aten::exp", "aten::sin", "aten::cos", "aten::pow", "rsqrt", "aten::sqrt", "clamp", "where",
                    "aten::rsub", "aten::tanh", "aten::mean", "aten::sum", "aten::abs", "aten::lerp", "aten::fill_",
                    "aten::zero_"),
}


def op_class(name):
    for cls, keys in CLASSES.items():
        if any(k in name for k in keys):
            return cls
    return None


class Sections:
    """Marks sections with profiler ranges: `enter(name)` closes the open one and opens `name`."""

    def __init__(self):
        self.open = None

    def enter(self, name):
        self.close()
        if name is not None:
            self.open = torch.autograd.profiler.record_function("section::" + name)
            self.open.__enter__()

    def close(self):
        if self.open is not None:
            self.open.__exit__(None, None, None)
            self.open = None


def summarise(prof):
    """{section: {wall_s, entries, other_s, seconds: {class: s}, calls: {class: n}}} from a profile."""
    events = list(prof.events())
    ranges = [(e.name[len("section::"):], e.time_range.start, e.time_range.end, e.thread)
              for e in events if e.name.startswith("section::")]
    out = {}
    for name, start, end, _ in ranges:
        s = out.setdefault(name, {"wall_s": 0.0, "entries": 0, "seconds": {}, "calls": {}, "operations": {}})
        s["wall_s"] += (end - start) / 1e6
        s["entries"] += 1
    for e in events:
        if e.name.startswith("section::"):
            continue
        cls = op_class(e.name)
        for name, start, end, thread in ranges:
            if thread == e.thread and start <= e.time_range.start < end:
                s = out[name]
                seconds = e.self_cpu_time_total / 1e6
                s["operations"][e.name] = s["operations"].get(e.name, 0.0) + seconds
                if cls is not None:
                    s["seconds"][cls] = s["seconds"].get(cls, 0.0) + seconds
                    s["calls"][cls] = s["calls"].get(cls, 0) + 1
                break
    for s in out.values():
        s["other_s"] = s["wall_s"] - sum(s["seconds"].values())
    return out
