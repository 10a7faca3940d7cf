"""A listening page like the papers' demo pages, generated from the same data ``evaluate --compare`` scores.

:func:`build_report` takes a folder laid out like ``shared/data/eval``
(``<set>/<ratio>/<clip>/{truth,input,<system>}.*``), scores it with :func:`specsr.evaluate.score_clip`
(the very function behind :func:`specsr.evaluate.compare`, so the summary numbers are compare's),
and writes a self-contained folder:

- ``index.html``: a summary table per set and ratio (mean LSD / LSD-HF / LSD-LF / SNR per system, the
  best of each column in bold), a "how measured" paragraph, then per clip an audio player and a
  spectrogram per system, truth last. Plain HTML and CSS with relative links, plus a few lines of
  optional JavaScript that pause the other players when one starts; it opens from the file system
  and can be published as is;
- ``clips/<set>/<ratio>/<clip>/<system>.{flac,wav,…,png}``: the audio that was scored and its
  spectrogram (the scored signal: channel mean at 48 kHz, one colour scale per clip);
- ``summary.csv`` and ``clips.csv``: the numbers of the page.

Audio files are copied as they are when browsers play them (FLAC, 16-bit WAV, MP3, Ogg); anything
else is transcoded to FLAC, and outputs computed by the report (baselines, a specsr model) are
written as 24-bit FLAC. The page says which. :func:`build_pair_report` does the same for one input,
its output and (optionally) a reference.

The folder appears under its final name only when complete; an existing one is replaced only with
``force`` and only if it is empty or a previous report.

The package: :mod:`specsr.report.build` (scoring, the clips' audio and thumbnails, the folder) and
:mod:`specsr.report.render` (the page: HTML, CSS, JavaScript).
"""

from specsr.report.build import BROWSER_FORMATS, MARKER, ReportSummary, build_pair_report, build_report
from specsr.report.render import THUMB_HEIGHT_PX, THUMB_WIDTH_PX, Entry, ShownClip, render_html

__all__ = ["BROWSER_FORMATS", "MARKER", "THUMB_HEIGHT_PX", "THUMB_WIDTH_PX", "Entry", "ReportSummary", "ShownClip",
           "build_pair_report", "build_report", "render_html"]
