"""The tag head: content-word vocabulary, fitting, top tags, and its place in the prefix."""

import pytest
import torch

from emosem.config import LossConfig, ModelConfig
from emosem.modeling.emosem import EmoSEM
from emosem.modeling.tag_head import FEATURE_DIM, TagHead, tag_vocabulary

WORDS = {1: "the", 2: "volcano", 3: "pond", 4: ",", 5: "red", 6: "a"}


def test_vocabulary_keeps_content_words_only():
    docs = [[1, 2, 4, 5], [1, 2, 4], [1, 3, 4, 6], [1, 3, 5], [1, 2]]
    ids, share = tag_vocabulary(docs, lambda t: " " + WORDS[t[0]], min_df=2, max_df=0.8)
    # "the" is in every document (> max_df), "," is not a word, "a" is too short and rare.
    assert ids.tolist() == [2, 3, 5] and share.tolist() == pytest.approx([0.6, 0.4, 0.4])


def test_fit_separates_tags_and_top_tokens_use_the_lift():
    g = torch.Generator().manual_seed(0)
    n = 64
    label = torch.arange(n) % 2
    feats = torch.randn(n, FEATURE_DIM, generator=g)
    feats[:, 0] += 4.0 * (2 * label - 1)  # feature 0 tells volcano (1) from pond (0)
    head = TagHead(3)
    head.token_ids.copy_(torch.tensor([2, 3, 5]))
    docs = [[2, 5] if y else [3, 5] for y in label.tolist()]  # "red" in every document
    assert head.targets(docs[:2]).tolist() == [[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]
    bce = head.fit(feats, docs)
    assert bce < 0.05
    top = head.top_tokens(head(feats), k=1)[:, 0]
    # "red" is always likely but never informative: the lift over the prior ranks it low.
    assert top.tolist() == [2 if y else 3 for y in label.tolist()]


def test_tag_head_joins_the_prefix_and_round_trips(tmp_path, tiny_llama_dir):
    torch.manual_seed(0)
    model = EmoSEM.build(ModelConfig(lm=str(tiny_llama_dir), prefix_length=4, tag_k=3))
    ids = torch.tensor(sorted(set(model.lm._ids([" volcano pond red storm cloud"])[0])))
    head = model.add_tag_head(ids)
    assert model.config.num_tags == len(ids)
    model.set_stage("language")
    batch = {
        "image": torch.randn(2, 3, 256, 256), "mask": torch.zeros(2, 256, 256),
        "has_mask": [False, False], "emotion": ["anger", "contentment"],
        "utterance": ["the red storm frightens me", "the calm pond"], "has_text": [True, True],
    }
    out = model(batch, LossConfig())
    assert "tags" in out.losses and torch.isfinite(out.losses["tags"])
    out.loss.backward()
    assert head.linear.weight.grad is not None
    with torch.no_grad():
        emb = model.encode(batch["image"])
        tokens = model.emotion_tokens(batch["emotion"])
        logits, _, mtok = model.decode(emb, tokens)
        prefix = model.prefix(emb, logits.sigmoid(), mtok, tokens)
        tags = head.top_tokens(model.tag_logits(emb, logits.sigmoid(), mtok, tokens), 3)
    assert prefix.shape == (2, 4 + 3, model.lm.hidden_size)
    assert set(tags.flatten().tolist()) <= set(ids.tolist())
    torch.testing.assert_close(prefix[:, 4:], model.lm.embed_ids(tags))
    model.save_pretrained(tmp_path / "ckpt")
    loaded = EmoSEM.from_pretrained(tmp_path / "ckpt")
    assert loaded.tag_head is not None and torch.equal(loaded.tag_head.token_ids, head.token_ids)
    with torch.no_grad():
        again = loaded.prefix(emb, logits.sigmoid(), mtok, tokens)
    torch.testing.assert_close(again, prefix, atol=1e-5, rtol=1e-4)
