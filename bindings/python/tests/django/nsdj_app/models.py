"""Models of the tests: Django's own ``cache.models.Poll`` and a small schema
for the query cache (a foreign key, a many-to-many, a user)."""

from django.db import models
from django.utils import timezone
from nscache.django.query import CachedManager


def expensive_calculation():
    # From Django's tests/cache/models.py (BSD-3-Clause).
    expensive_calculation.num_runs += 1
    return timezone.now()


expensive_calculation.num_runs = 0


class Poll(models.Model):
    # From Django's tests/cache/models.py (BSD-3-Clause).
    question = models.CharField(max_length=200)
    answer = models.CharField(max_length=200)
    pub_date = models.DateTimeField("date published", default=expensive_calculation)


class Customer(models.Model):
    name = models.CharField(max_length=100)
    owner_id = models.IntegerField(default=0)

    objects = CachedManager()


class Tag(models.Model):
    label = models.CharField(max_length=50)

    objects = CachedManager()


class Invoice(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="invoices")
    number = models.IntegerField()
    total = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag, related_name="invoices")

    objects = CachedManager()
