"""Optional add-ons for e-commerce frameworks, one app each (``prodcat_django.contrib.oscar``)."""
