import pytest

from stager.config import load_settings


def test_space_variables_are_fallbacks_and_ours_win():
    s = load_settings({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7999",
                       "SPACE_ID": "team/stager"})
    assert (s.app_host, s.app_port, s.space_id) == ("0.0.0.0", 7999, "team/stager")
    s = load_settings({"GRADIO_SERVER_PORT": "7999", "STAGER_APP_PORT": "8000"})
    assert (s.app_host, s.app_port) == ("127.0.0.1", 8000)


def test_bad_values_name_the_variable(tmp_path):
    with pytest.raises(ValueError, match="STAGER_TOP_K"):
        load_settings({"STAGER_TOP_K": "many"})
    with pytest.raises(ValueError, match="STAGER_ALLOW_DOWNLOAD"):
        load_settings({"STAGER_ALLOW_DOWNLOAD": "perhaps"})
    s = load_settings({"STAGER_DATA_DIR": str(tmp_path), "STAGER_ALLOW_DOWNLOAD": "1"})
    assert s.allow_download is True and s.db_url == f"sqlite:///{tmp_path / 'audit.sqlite'}"


def test_a_space_turns_the_pretrained_tier_on_unless_told_otherwise():
    from stager.config import load_settings

    st = load_settings({"SPACE_ID": "me/stager"})
    assert st.allow_download and st.clip_pretrained == "laion2b_s34b_b79k"
    st = load_settings({"SPACE_ID": "me/stager", "STAGER_ALLOW_DOWNLOAD": "0"})
    assert not st.allow_download
    assert not load_settings({}).allow_download  # never by default elsewhere


def test_a_space_turns_stable_diffusion_on_only_with_a_gpu(monkeypatch):
    """SD inpainting is a default on a Space with a GPU; on a CPU Space, or off a Space even
    with a GPU, it stays off unless STAGER_DIFFUSION_MODEL_ID names a model."""
    import torch

    from stager import config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load_settings({"SPACE_ID": "me/stager"}).diffusion_model_id == config.SPACE_SD_MODEL
    assert load_settings({}).diffusion_model_id == ""
    assert load_settings({"SPACE_ID": "me/stager", "STAGER_DIFFUSION_MODEL_ID": "/m"}
                         ).diffusion_model_id == "/m"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert load_settings({"SPACE_ID": "me/stager"}).diffusion_model_id == ""
