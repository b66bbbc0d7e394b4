"""Models: parameters, spectral/spatial/temporal components, priors and YAML IO.

Everything here is plain numpy/astropy: models are pure functions of
coordinates and canonical parameter floats, with analytic gradients.
Importing this package registers every model class under its Gammapy tags.
"""

from .core import MODEL_REGISTRY, ModelBase, get_model_class, model_from_dict, register_model
from .layout import ComponentLayout, ParameterLayout
from .nuisance import EnergyBias, EnergyScale, EnergyScaleModel, fov_background_systematics
from .parameters import FlatLayout, Parameter, Parameters, ParameterSpec, link_parameters
from .priors import (
    GaussianPrior,
    GeneralizedGaussianPrior,
    LogUniformPrior,
    Prior,
    UniformPrior,
    prior_from_dict,
)
from .sky import FoVBackgroundModel, Models, SkyModel
from .spatial import (
    ConstantSpatialModel,
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SpatialModel,
)
from .spatial_template import TemplateSpatialModel
from .spectral import (
    BrokenPowerLawSpectralModel,
    CompoundSpectralModel,
    ConstantSpectralModel,
    ExpCutoffPowerLaw3FGLSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    GaussianSpectralModel,
    LogParabola2SpectralModel,
    LogParabola10SpectralModel,
    LogParabolaSpectralModel,
    PowerLaw2SpectralModel,
    PowerLawSpectralModel,
    SmoothBrokenPowerLawSpectralModel,
    SpectralModel,
    SuperExpCutoffPowerLaw3FGLSpectralModel,
    SuperExpCutoffPowerLaw4FGLDR3SpectralModel,
    SuperExpCutoffPowerLaw4FGLSpectralModel,
    TemplateSpectralModel,
)
from .spectral_norm import (
    ExpCutoffPowerLawNormSpectralModel,
    LogParabolaNormSpectralModel,
    PiecewiseNormSpectralModel,
    PowerLawNormSpectralModel,
    ScaleSpectralModel,
)
from .temporal import (
    ConstantTemporalModel,
    ExpDecayTemporalModel,
    GaussianTemporalModel,
    LightCurveTemplateTemporalModel,
    LinearTemporalModel,
    PowerLawTemporalModel,
    SineTemporalModel,
    TemporalModel,
)

__all__ = [
    "ConstantSpatialModel",
    "DiskSpatialModel",
    "GaussianSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "PointSpatialModel",
    "Shell2SpatialModel",
    "ShellSpatialModel",
    "SpatialModel",
    "TemplateSpatialModel",
    "ConstantTemporalModel",
    "ExpDecayTemporalModel",
    "GaussianTemporalModel",
    "LightCurveTemplateTemporalModel",
    "LinearTemporalModel",
    "PowerLawTemporalModel",
    "SineTemporalModel",
    "TemporalModel",
    "MODEL_REGISTRY",
    "BrokenPowerLawSpectralModel",
    "CompoundSpectralModel",
    "ConstantSpectralModel",
    "ExpCutoffPowerLaw3FGLSpectralModel",
    "ExpCutoffPowerLawNormSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "FlatLayout",
    "ParameterLayout",
    "ComponentLayout",
    "FoVBackgroundModel",
    "EnergyScaleModel",
    "EnergyScale",
    "EnergyBias",
    "fov_background_systematics",
    "Models",
    "SkyModel",
    "GaussianPrior",
    "GaussianSpectralModel",
    "GeneralizedGaussianPrior",
    "LogParabola10SpectralModel",
    "LogParabola2SpectralModel",
    "LogParabolaNormSpectralModel",
    "LogParabolaSpectralModel",
    "LogUniformPrior",
    "ModelBase",
    "Parameter",
    "ParameterSpec",
    "Parameters",
    "PiecewiseNormSpectralModel",
    "PowerLaw2SpectralModel",
    "PowerLawNormSpectralModel",
    "PowerLawSpectralModel",
    "Prior",
    "ScaleSpectralModel",
    "SmoothBrokenPowerLawSpectralModel",
    "SpectralModel",
    "SuperExpCutoffPowerLaw3FGLSpectralModel",
    "SuperExpCutoffPowerLaw4FGLDR3SpectralModel",
    "SuperExpCutoffPowerLaw4FGLSpectralModel",
    "TemplateSpectralModel",
    "UniformPrior",
    "get_model_class",
    "link_parameters",
    "model_from_dict",
    "prior_from_dict",
    "register_model",
]
