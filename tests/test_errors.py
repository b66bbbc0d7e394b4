import pickle

from gdask.errors import FileReadError, GdaskError, MissingColumnError


def test_error_names_file_observation_and_field():
    err = MissingColumnError(
        "column 'ENERGY' not found", file="run.fits", obs_id=23523, field="EVENTS.ENERGY"
    )
    text = str(err)
    assert "run.fits" in text and "23523" in text and "EVENTS.ENERGY" in text
    assert isinstance(err, GdaskError)


def test_error_survives_pickling_with_context():
    err = FileReadError("truncated", file="a.fits.gz", obs_id=7)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is FileReadError
    assert (back.file, back.obs_id, back.message) == ("a.fits.gz", 7, "truncated")


def test_with_context_fills_only_missing():
    err = GdaskError("bad", field="X").with_context(file="f", obs_id=1, field="Y")
    assert (err.file, err.obs_id, err.field) == ("f", 1, "X")
