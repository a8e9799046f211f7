"""Input and output serializers, one module per part of the API. Names are globally unique
because drf-yasg names its schemas after the class."""
