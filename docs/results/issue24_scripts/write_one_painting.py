"""Seconds to write one painting's nine-emotion result files (issue 24, collection throughput).

Predicts the nine emotions once with the bundled checkpoint (masks only; a fixed explanation text
stands in for the language model, so only the writing is timed), then times
``write_image_results`` (overlays, heat maps, masks, panels, grid, distribution, results.json)
three times and prints the median. Run from the repository root on an idle machine, with the code
to compare checked out:

    python docs/results/issue24_scripts/write_one_painting.py demo/assets/starry_night.jpg
"""

import pathlib
import statistics
import sys
import tempfile
import time

from emosem.emotions import ARTEMIS_EMOTIONS
from emosem.inference.outputs import write_image_results
from emosem.inference.predictor import EmoSEMPredictor

TEXT = ("I feel this because the swirling blue sky above the dark village is vast and the bright "
        "yellow stars seem to move with a restless energy.")

p = EmoSEMPredictor.from_pretrained("checkpoints/emosem-tiny", explain=False)
for name in sys.argv[1:]:
    st = p.set_image(name)
    results = p.predict(list(ARTEMIS_EMOTIONS), explain=False)
    for r in results:
        r.explanation = TEXT
    dist = p.predict_distribution()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(3):
            t = time.perf_counter()
            write_image_results(pathlib.Path(tmp) / str(k), pathlib.Path(name).name, st.image, results,
                                distribution=dist, in_domain=p.domain_score)
            times.append(time.perf_counter() - t)
    print(pathlib.Path(name).name, "x".join(map(str, st.image.shape[:2])),
          "write_image_results s: median", round(statistics.median(times), 2), [round(x, 2) for x in times])
