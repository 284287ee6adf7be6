"""The XSimGCL and SelfCF baselines: their losses against hand-computed values, XSimGCL's noise,
the LightGCN layers they read, the scoring paths, and short runs on a slice of the real
Instrument data through the project runner (general models in the sequential pipeline)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_sdmtmp.model.baselines.selfcf import SelfCF, negative_cosine
from recbole_sdmtmp.model.baselines.xsimgcl import XSimGCL, XSimGCLOutput
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run

SLICE = "InstrumentSlice"
SLICE_USERS = 300
MODELS = {"XSimGCL": XSimGCL, "SelfCF": SelfCF}


@pytest.fixture(scope="module")
def slice_root(tmp_path_factory, instrument_raw):
    """The real Instrument file converted by the project's preprocessing, cut to its first 300
    users (all of their interactions) under a new dataset name."""
    from dataset_preprocess.pipeline import prepare_dataset

    full_root = tmp_path_factory.mktemp("instrument_full")
    full_dir = prepare_dataset("Instrument", out_dir=full_root, raw_file=instrument_raw,
                               download=False, topics=False)
    inter = pd.read_csv(full_dir / "Instrument.inter", sep="\t", dtype={"user_id:token": str, "item_id:token": str})
    users = sorted(inter["user_id:token"].unique())[:SLICE_USERS]
    sliced = inter[inter["user_id:token"].isin(users)]
    root = tmp_path_factory.mktemp("slice")
    (root / SLICE).mkdir()
    sliced.to_csv(root / SLICE / f"{SLICE}.inter", sep="\t", index=False)
    return root


def settings(root, tmp_path, **overrides):
    values = {
        "data_path": str(root),
        "epochs": 2,
        "show_progress": False,
        "embedding_size": 16,
        "checkpoint_dir": str(tmp_path / "saved"),
        "device": "cpu",
        "use_gpu": False,
    }
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def loaded(slice_root, tmp_path_factory):
    """(config, train, test) per model name, loaded once for the module."""
    cache = {}

    def load(name, **overrides):
        key = (name, tuple(sorted(overrides.items())))
        if key not in cache:
            config = build_config(name, SLICE, config_dict=settings(
                slice_root, tmp_path_factory.mktemp("run"), **overrides))
            _, (train, _, test) = load_data(config)
            cache[key] = (config, train, test)
        return cache[key]

    return load


def build(loaded, name, **overrides):
    config, train, test = loaded(name, **overrides)
    torch.manual_seed(0)
    return MODELS[name](config, train._dataset), train, test


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


def dense_adjacency(model) -> torch.Tensor:
    return model.norm_adj_matrix.to_dense()  # [m + n, m + n]


# --- XSimGCL ---------------------------------------------------------------------------------


def test_xsimgcl_contrastive_loss_by_hand(loaded):
    model, _, _ = build(loaded, "XSimGCL")
    model.tau = 0.5
    output = XSimGCLOutput(
        user_final=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        item_final=torch.tensor([[3.0, 4.0], [1.0, 0.0]]),
        user_cl=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        item_cl=torch.tensor([[0.0, 2.0], [1.0, 0.0]]),
    )
    # Users: unit views, cos = I, logits = I / 0.5 = [[2, 0], [0, 2]]:
    #   each row -log(e^2 / (e^2 + e^0)) = log(1 + e^-2) = 0.126928; mean 0.126928.
    # Items: normalized final [[0.6, 0.8], [1, 0]], cl [[0, 1], [1, 0]];
    #   cos = [[0.8, 0.6], [0, 1]], logits = [[1.6, 1.2], [0, 2]];
    #   row 0: log(1 + e^-0.4) = 0.513015; row 1: log(1 + e^-2) = 0.126928; mean 0.319972.
    # Total 0.126928 + 0.319972 = 0.446900. Duplicate ids in the batch count once.
    users = torch.tensor([0, 1, 1, 0])
    items = torch.tensor([0, 1, 0])
    expected = math.log1p(math.exp(-2)) + (math.log1p(math.exp(-0.4)) + math.log1p(math.exp(-2))) / 2
    assert expected == pytest.approx(0.446900, abs=1e-6)
    loss = model.contrastive_loss(users, items, output)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_xsimgcl_loss_is_bpr_plus_weighted_cl_plus_reg(loaded):
    model, train, _ = build(loaded, "XSimGCL")
    model.eps = 0.0  # noise off: every forward is the same
    model.train()
    interaction = first_batch(train)
    model.cl_weight, model.reg_weight = 0.0, 0.0
    bpr = model.calculate_loss(interaction)
    model.cl_weight = 0.2
    with_cl = model.calculate_loss(interaction)
    cl = model.contrastive_loss(interaction["user_id"], interaction["item_id"], model.forward())
    assert cl.item() > 0
    assert with_cl.item() == pytest.approx(bpr.item() + 0.2 * cl.item(), rel=1e-5)
    with torch.no_grad():  # one heavy negative item, so that every term of the L2 shows
        interaction["neg_item_id"] = torch.full_like(interaction["neg_item_id"], 1)
        model.item_embedding.weight[1] *= 50.0
    without_reg = model.calculate_loss(interaction)
    model.reg_weight = 1.0
    with_reg = model.calculate_loss(interaction)
    # RecBole's EmbLoss on the batch's ego embeddings (user, positive, negative): sum of the
    # three Frobenius norms / batch size.
    reg = sum(torch.linalg.norm(table(interaction[field])) for table, field in (
        (model.user_embedding, "user_id"), (model.item_embedding, "item_id"),
        (model.item_embedding, "neg_item_id"))) / interaction["user_id"].shape[0]
    assert with_reg.item() == pytest.approx(without_reg.item() + reg.item(), rel=1e-5)


def test_xsimgcl_final_is_mean_of_layers_1_to_L_and_cl_is_layer_l_star(loaded):
    model, _, _ = build(loaded, "XSimGCL", n_layers=3, layer_cl=2)
    model.eval()
    adjacency = dense_adjacency(model)
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    e1 = adjacency @ e0
    e2 = adjacency @ e1
    e3 = adjacency @ e2
    with torch.no_grad():
        output = model.forward()
    m = model.n_users
    torch.testing.assert_close(output.user_final, ((e1 + e2 + e3) / 3)[:m], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.item_final, ((e1 + e2 + e3) / 3)[m:], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.user_cl, e2[:m], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(output.item_cl, e2[m:], atol=1e-6, rtol=1e-5)


def test_xsimgcl_bad_layer_cl(loaded):
    with pytest.raises(ValueError, match="layer_cl"):
        build(loaded, "XSimGCL", layer_cl=3)


def test_xsimgcl_noise_has_norm_eps_and_the_sign_of_e(loaded):
    model, _, _ = build(loaded, "XSimGCL", eps=0.3)
    embeddings = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    delta = model.perturb(embeddings) - embeddings
    torch.testing.assert_close(torch.linalg.norm(delta, dim=1), torch.full((50,), 0.3))
    assert torch.equal(torch.sign(delta), torch.sign(embeddings))  # uniform noise, signed like E
    assert not torch.allclose(model.perturb(embeddings), model.perturb(embeddings))  # random
    # A zero entry gets no noise; an all-zero row (isolated node) stays zero.
    zero_row = model.perturb(torch.zeros(1, 16))
    assert torch.equal(zero_row, torch.zeros(1, 16))


def test_xsimgcl_noise_in_training_only(loaded):
    model, _, test = build(loaded, "XSimGCL")
    model.eval()
    with torch.no_grad():
        first, second = model.forward(), model.forward()
        for a, b in zip(first, second):
            assert torch.equal(a, b)
        clean = model.forward(perturbed=False)
        assert torch.equal(first.user_final, clean.user_final)
        model.train()
        noisy, noisy_again = model.forward(), model.forward()
    assert not torch.allclose(noisy.user_final, clean.user_final)
    assert not torch.allclose(noisy.item_cl, noisy_again.item_cl)
    # Evaluation caches the noise-free embeddings, whatever mode the model is in.
    model.eval()
    with torch.no_grad():
        scores = model.full_sort_predict(first_batch(test))
    users = first_batch(test)["user_id"]
    torch.testing.assert_close(scores, clean.user_final[users] @ clean.item_final.T)


# --- SelfCF ----------------------------------------------------------------------------------


def test_selfcf_loss_by_hand(loaded):
    model, _, _ = build(loaded, "SelfCF", dropout=0.0)
    model.predictor = torch.nn.Linear(2, 2)  # d = 2 for the hand computation
    with torch.no_grad():
        model.predictor.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))  # h(x) = (2 x1, x2)
        model.predictor.bias.zero_()
    users = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # online e_u of two positive pairs
    items = torch.tensor([[0.0, 1.0], [3.0, 4.0]])  # online e_i
    # h(u) = [[2, 0], [2, 1]]; h(i) = [[0, 1], [6, 4]]; targets = the online views (dropout 0).
    # cos(h(u_k), i_k): cos([2,0],[0,1]) = 0; cos([2,1],[3,4]) = 10/sqrt(125) = 0.894427 -> mean 0.447214
    # cos(h(i_k), u_k): cos([0,1],[1,0]) = 0; cos([6,4],[1,1]) = 10/sqrt(104) = 0.980581 -> mean 0.490290
    # L = -0.5 * 0.447214 - 0.5 * 0.490290 = -0.468752
    expected = -0.5 * (10 / math.sqrt(125)) / 2 - 0.5 * (10 / math.sqrt(104)) / 2
    assert expected == pytest.approx(-0.468752, abs=1e-6)
    model.train()
    assert model.selfcf_loss(users, items).item() == pytest.approx(expected, rel=1e-6)


def test_selfcf_targets_get_no_gradient(loaded):
    model, _, _ = build(loaded, "SelfCF", dropout=0.0)
    model.train()
    users = torch.randn(4, 16, requires_grad=True)
    items = torch.randn(4, 16, requires_grad=True)
    model.selfcf_loss(users, items).backward()
    got = users.grad.clone(), items.grad.clone()
    users.grad, items.grad = None, None
    # Expected: the gradient flows through the predictor branch only.
    expected = 0.5 * negative_cosine(model.predictor(users), items.detach()) + 0.5 * negative_cosine(
        model.predictor(items), users.detach())
    expected.backward()
    torch.testing.assert_close(got[0], users.grad)
    torch.testing.assert_close(got[1], items.grad)
    users.grad, items.grad = None, None
    no_stop = -0.5 * torch.cosine_similarity(model.predictor(users), items, dim=-1).mean() - 0.5 * (
        torch.cosine_similarity(model.predictor(items), users, dim=-1).mean())
    no_stop.backward()
    assert not torch.allclose(got[0], users.grad)


def test_selfcf_target_is_embedding_dropout_in_training_only(loaded):
    model, _, _ = build(loaded, "SelfCF", dropout=0.5)
    online = torch.rand(200, 16) + 0.5  # no zero entries
    model.train()
    target = model.target_view(online)
    kept = target != 0
    torch.testing.assert_close(target[kept], 2.0 * online[kept])  # inverted dropout: x / (1 - p)
    assert 0.4 < (~kept).float().mean().item() < 0.6
    assert not target.requires_grad
    model.eval()
    assert torch.equal(model.target_view(online), online)


def test_selfcf_online_embedding_is_lightgcn_mean_of_layers_0_to_L(loaded):
    model, _, _ = build(loaded, "SelfCF")
    adjacency = dense_adjacency(model)
    e0 = torch.cat([model.user_embedding.weight, model.item_embedding.weight]).detach()
    e1 = adjacency @ e0
    e2 = adjacency @ e1
    with torch.no_grad():
        users, items = model.forward()
    m = model.n_users
    torch.testing.assert_close(users, ((e0 + e1 + e2) / 3)[:m], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(items, ((e0 + e1 + e2) / 3)[m:], atol=1e-6, rtol=1e-5)


def test_selfcf_score_is_predictor_user_dot_item_plus_user_dot_predictor_item(loaded):
    model, _, test = build(loaded, "SelfCF")
    with torch.no_grad():
        model.predictor.bias.normal_()  # xavier init zeroes it; make it count
        model.eval()
        interaction = first_batch(test)
        users, items = model.forward()
        u = users[interaction["user_id"]]
        expected = model.predictor(u) @ items.T + u @ model.predictor(items).T
        torch.testing.assert_close(model.full_sort_predict(interaction), expected, atol=1e-5, rtol=1e-5)


def test_selfcf_loss_ignores_the_negative_item(loaded):
    model, train, _ = build(loaded, "SelfCF", dropout=0.0)
    model.train()
    interaction = first_batch(train)
    base = model.calculate_loss(interaction).item()
    interaction["neg_item_id"] = torch.roll(interaction["neg_item_id"], 1)
    assert model.calculate_loss(interaction).item() == base


# --- both ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_is_binary_and_symmetric_normalized(loaded, name):
    model, train, _ = build(loaded, name)
    dataset = train._dataset
    binary = (dataset.inter_matrix(form="csr") > 0).astype(np.float64)
    degrees = np.concatenate([np.asarray(binary.sum(axis=1)).ravel(), np.asarray(binary.sum(axis=0)).ravel()])
    adjacency = model.norm_adj_matrix.coalesce()
    rows, cols = adjacency.indices().numpy()
    values = adjacency.values().numpy()
    np.testing.assert_allclose(values, 1 / np.sqrt(degrees[rows] * degrees[cols]), rtol=1e-6)
    assert len(values) == 2 * binary.nnz
    # A general model's training rows are every training interaction (each user's first one
    # included) and the graph is exactly those rows, each once.
    assert binary.nnz == len(dataset.inter_feat) and (dataset.inter_feat["item_length"] == 0).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_full_sort_predict_equals_predict_on_every_item(loaded, name):
    model, _, test = build(loaded, name)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_()
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        full = model.full_sort_predict(interaction)  # [B, n_items]
        assert full.shape == (interaction["user_id"].shape[0], model.n_items)
        for item in range(model.n_items):
            interaction["item_id"] = torch.full_like(interaction["item_id"], item)
            torch.testing.assert_close(model.predict(interaction), full[:, item], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_cache_dropped_by_training(loaded, name):
    model, train, test = build(loaded, name)
    model.eval()
    with torch.no_grad():
        model.full_sort_predict(first_batch(test))
    assert model.restore_user_e is not None and model.restore_item_e is not None
    model.train()
    model.calculate_loss(first_batch(train))
    assert model.restore_user_e is None and model.restore_item_e is None
    assert model.other_parameter_name == ["restore_user_e", "restore_item_e"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trains_on_real_slice_through_the_runner(slice_root, tmp_path, name):
    result = run(build_config(name, SLICE, config_dict=settings(slice_root, tmp_path)))
    assert result.epochs == 2
    assert all(math.isfinite(loss) for loss in result.train_losses)
    assert result.train_losses[1] < result.train_losses[0]  # it learns from the training split
    # the test result is the mean of the per-user metrics the paired tests use, one per test user
    for metric in ("hit@10", "hit@20", "ndcg@10", "ndcg@20"):
        per_case = result.test_case_metrics[metric]
        assert len(per_case) == result.test_cases
        assert result.test_result[metric] == pytest.approx(float(np.mean(per_case)), abs=1e-4)


def test_plugin_models_are_found_by_module_name(tmp_path, monkeypatch):
    """A new ``recbole_sdmtmp/model/baselines/<name>.py`` needs no registration: its class says
    which dataset it reads (``DATASET_CLASS``); unknown names say so."""
    from recbole_sdmtmp import registry
    from recbole_sdmtmp.data import SDMTMPDataset
    from recbole_sdmtmp.data.reviews import ReviewDataset

    assert registry.resolve_model("SASRec")[0].__name__ == "SASRec"
    assert registry.resolve_model("SDMTMP")[1] is SDMTMPDataset
    assert registry.resolve_model("RGCL")[1] is ReviewDataset
    assert registry.resolve_model("XSimGCL")[1] is None
    assert registry.plugin_model("graph") is None  # a module without the class
    assert {"SDMTMP", "XSimGCL", "SelfCF", "RGCL", "RRPU", "MISSRec"} == set(registry.plugin_model_names())
    with pytest.raises(ValueError, match="unknown model 'NoSuchModel'"):
        registry.resolve_model("NoSuchModel")
    package = tmp_path / "recbole_sdmtmp_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "toymodel.py").write_text("class ToyModel:\n    DATASET_CLASS = dict\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import recbole_sdmtmp.model.baselines as baselines

    monkeypatch.setattr(baselines, "__path__", [*baselines.__path__, str(package)])
    found, dataset_class = registry.resolve_model("ToyModel")
    assert found.__name__ == "ToyModel" and dataset_class is dict
