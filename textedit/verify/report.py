"""The verification report: a PNG contact sheet, every image, ``metrics.json`` and ``index.html``.

    OUT/contact_sheet.png     rows = prompts, columns = (before, after) per seed, captions drawn
    OUT/images/rRR_sS_{before,after}.png
    OUT/metrics.json          per-row scores and per-kind means, the patch and the sampling
    OUT/index.html            all of it on one page (relative links, opens offline)

The report folder is written whole or not at all (``io.write_folder``): a run that stops leaves the
earlier report, or none, never half of one.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ..io import write_folder
from ..patch import Patch
from .metrics import to_pil
from .verifier import VerifyResult

CAPTION_WIDTH = 280
HEADER_HEIGHT = 26
PAD = 4
SEED_GAP = 10

#: the title of each score in the report
SCORE_NAMES = {
    "pixel_change": "pixel change (mean |after − before|)",
    "pixel_to_anchor_before": "pixel distance to anchor, before",
    "pixel_to_anchor_after": "pixel distance to anchor, after",
    "clip_t_before": "CLIP-T before",
    "clip_t_after": "CLIP-T after",
    "clip_i_before": "CLIP-I before",
    "clip_i_after": "CLIP-I after",
    "clip_change": "CLIP change (1 − cos(before, after))",
    "conditioning_change": "conditioning change (‖after − before‖ / ‖before‖)",
    "conditioning_to_anchor_before": "conditioning cos to anchor, before",
    "conditioning_to_anchor_after": "conditioning cos to anchor, after",
    "projected_conditioning_change": "after the text projection: conditioning change",
    "projected_conditioning_to_anchor_before": "after the text projection: cos to anchor, before",
    "projected_conditioning_to_anchor_after": "after the text projection: cos to anchor, after",
}


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + ([line] if line else [])


def contact_sheet(result: VerifyResult, cell: int | None = None):
    """A PIL image: one row per prompt, (before, after) per seed, prompt and headers drawn."""
    n_rows, n_seeds, _, height, width = result.before.shape
    cell = cell or max(128, min(256, max(height, width)))
    font, small = _font(13), _font(11)
    col_x = []
    x = CAPTION_WIDTH
    for _ in range(n_seeds):
        col_x.append((x, x + cell + PAD))
        x += 2 * (cell + PAD) + SEED_GAP
    sheet = Image.new("RGB", (x, HEADER_HEIGHT + n_rows * (cell + PAD)), "white")
    draw = ImageDraw.Draw(sheet)
    for seed, (x_before, x_after) in zip(result.seeds, col_x):
        draw.text((x_before + 2, 6), f"seed {seed} · before", fill="black", font=small)
        draw.text((x_after + 2, 6), f"seed {seed} · after", fill="black", font=small)
    resample = Image.NEAREST if cell >= max(height, width) else Image.LANCZOS
    for i, row in enumerate(result.rows):
        y = HEADER_HEIGHT + i * (cell + PAD)
        lines = [f"[{row.kind}]"] + _wrap(row.prompt, font, CAPTION_WIDTH - 12)
        for j, line in enumerate(lines[: max(1, cell // 16)]):
            draw.text((6, y + 4 + 16 * j), line, fill="#555555" if j == 0 else "black", font=font)
        for s, (x_before, x_after) in enumerate(col_x):
            for grid, x in ((result.before, x_before), (result.after, x_after)):
                sheet.paste(to_pil(grid[i, s]).resize((cell, cell), resample), (x, y))
    return sheet


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def image_name(row: int, seed: int, when: str) -> str:
    return f"images/r{row:02d}_s{seed}_{when}.png"


def metrics_document(result: VerifyResult, patch: Patch, pipeline: str) -> dict:
    """What ``metrics.json`` holds (no timestamps: the same run gives the same file)."""
    return {
        "patch": {"id": patch.id, "method": patch.method, "family": patch.family, "components": patch.components,
                  "layers": {c: sorted(d.layer for d in patch.deltas if d.component == c) for c in patch.components},
                  "requests": patch.requests, "strength": result.scale * patch.scale},
        "pipeline": {"ref": pipeline, "family": result.family.name, "steps": result.sampling.steps,
                     "guidance_scale": result.sampling.guidance_scale, "height": result.sampling.height,
                     "width": result.sampling.width, "seeds": result.seeds},
        "clip_model": result.clip_model,
        "clip_i_reference": result.reference,
        "warnings": result.warnings,
        "summary": result.summary,
        "rows": [{"prompt": row.prompt, "kind": row.kind, "target": row.target, **scores}
                 for row, scores in zip(result.rows, result.scores)],
    }


def write_report(result: VerifyResult, patch: Patch, out_dir: str | Path, pipeline: str = "") -> Path:
    """Write the contact sheet, the images, ``metrics.json`` and ``index.html`` as the folder
    ``out_dir``, whole or not at all (an earlier report there is replaced; any other non-empty
    folder is refused)."""
    files = {}
    for i in range(len(result.rows)):
        for s, seed in enumerate(result.seeds):
            files[image_name(i, seed, "before")] = _png(to_pil(result.before[i, s]))
            files[image_name(i, seed, "after")] = _png(to_pil(result.after[i, s]))
    files["contact_sheet.png"] = _png(contact_sheet(result))
    document = metrics_document(result, patch, pipeline)
    files["metrics.json"] = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    files["index.html"] = render_html(result, document)
    return write_folder(files, out_dir, "a verify report", _is_report)


def _is_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier report (which may be replaced)."""
    return (folder / "index.html").is_file() or (folder / "metrics.json").is_file()


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def render_html(result: VerifyResult, document: dict) -> str:
    """The report page: metadata, warnings, metrics, the contact sheet and every image."""
    e = html.escape
    patch, pipeline = document["patch"], document["pipeline"]
    meta = [["patch id", e(patch["id"])], ["method", e(patch["method"])], ["encoder family", e(patch["family"])]]
    meta += [[f"layers of {e(c)}", e(", ".join(map(str, layers)))] for c, layers in patch["layers"].items()]
    meta += [["pipeline", e(f"{pipeline['ref']} ({result.family.title})")],
             ["sampling", e(f"{pipeline['steps']} steps, guidance {pipeline['guidance_scale']}, seeds "
                            f"{', '.join(map(str, pipeline['seeds']))}"
                            + (f", {pipeline['width']}×{pipeline['height']}" if pipeline["height"] else ""))],
             ["CLIP model", e(document["clip_model"] or "none: pixel-space scores only")]]
    if document["clip_model"]:
        meta.append(["CLIP-I reference", e(document["clip_i_reference"])])
    requests = _table(["query", "target", "subject"],
                      [[e(r["prompt"]), e(r["target"]), e(r.get("subject") or "")] for r in patch["requests"]])
    warnings = "".join(f"<li>{e(w)}</li>" for w in document["warnings"])
    names = [n for n in SCORE_NAMES if any(n in s for s in document["summary"].values())]
    summary = _table(["prompts"] + [SCORE_NAMES[n] for n in names],
                     [[e(kind)] + [_number(s[n]) if n in s else "" for n in names]
                      for kind, s in document["summary"].items()])
    per_row = _table(["kind", "prompt"] + [SCORE_NAMES[n] for n in names],
                     [[e(r["kind"]), e(r["prompt"])] + [_number(r[n]) if n in r else "" for n in names]
                      for r in document["rows"]])
    images = []
    for i, row in enumerate(result.rows):
        cells = "".join(f'<td><img src="{image_name(i, seed, when)}" alt="{e(when)}"><br>seed {seed} · {when}</td>'
                        for seed in result.seeds for when in ("before", "after"))
        images.append(f"<tr><th>[{e(row.kind)}] {e(row.prompt)}</th>{cells}</tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>textedit verify: patch {e(patch['id'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
img {{ width: 160px; image-rendering: pixelated; }}
.warn {{ background: #fff4e0; border-left: 4px solid #e69500; padding: .5em 1em; }}
</style></head><body>
<h1>textedit verify: patch {e(patch['id'])}</h1>
{_table(["", "value"], meta)}
<h2>Requests</h2>
{requests}
{f'<h2>Warnings</h2><ul class="warn">{warnings}</ul>' if warnings else ''}
<h2>Metrics (mean over seeds and prompts)</h2>
<p>Pixel scores are mean absolute differences of images in [0, 1]. For query prompts the anchor is the
unedited image of the anchor prompt with the same template and seed; after the edit a query should come
closer to it (pixel distance down, CLIP-T and CLIP-I up) while neutral prompts should not move.</p>
{summary}
<h2>Contact sheet</h2>
<p><img src="contact_sheet.png" alt="contact sheet" style="width: auto; max-width: 100%"></p>
<h2>Per prompt</h2>
{per_row}
<h2>Images</h2>
<table>{''.join(images)}</table>
</body></html>
"""
