"""Declarative automation: materialize what new data or an edited recipe changes, and nothing else.

Dagster's `AutomationCondition.eager()` runs an asset after any upstream materialization, even one
that wrote the same bytes. Every asset here records a data version, a digest of what it wrote, so
these conditions trigger on a changed data version instead: a step whose output did not change ends
the wave there. New drops enter through the drop sensor (`sensors.py`), which runs their per-drop
steps; from there each tick requests the assets whose inputs changed, one layer at a time.
"""

import dagster as dg

from curation_dag.settings import Settings

AC = dg.AutomationCondition
# The drop sensor, the automation sensor and the weekly schedule start on in `dagster dev`;
# CURATION_AUTOMATION=off starts them off (each can also be toggled in the UI's Automation tab).
AUTOMATION_ON = Settings.from_environment().automation
SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if AUTOMATION_ON else dg.DefaultSensorStatus.STOPPED
SCHEDULE_STATUS = dg.DefaultScheduleStatus.RUNNING if AUTOMATION_ON else dg.DefaultScheduleStatus.STOPPED


def _data_changed() -> dg.AutomationCondition:
    """A dependency wrote new data since the last tick, in a run that did not also run the target."""
    return (AC.data_version_changed() & ~AC.executed_with_root_target()).with_label("data_changed")


def _ready(trigger: dg.AutomationCondition, label: str) -> dg.AutomationCondition:
    """`trigger` since the target was last requested or updated, once no dependency is missing,
    running or about to run: a target waits for all its changing inputs and then runs once.
    A target first seen missing (a new SQL model or mixture spec) runs as soon as its inputs exist."""
    inputs_exist = AC.any_deps_match(~AC.missing()).with_label("inputs_exist")
    # The takedown log is missing until the first takedown; nothing waits for it.
    deps_missing = AC.any_deps_missing().ignore(dg.AssetSelection.assets("takedowns"))
    first_seen_missing = (AC.initial_evaluation() & AC.missing() & inputs_exist).with_label("first_seen_missing")
    return (
        (trigger.since_last_handled() | first_seen_missing)
        & ~deps_missing
        & ~AC.any_deps_in_progress()
        & ~AC.any_deps_match(AC.will_be_requested()).with_label("any_deps_requested")
        & ~AC.in_progress()
    ).with_label(label)


def on_new_data(ignore: tuple[dg.AssetKey, ...] = ()) -> dg.AutomationCondition:
    """Materialize when missing, when a dependency's data changed, or when the asset's own code
    (its SQL, its spec) changed. `ignore`: dependencies whose changes reach the asset another way."""
    deps_changed = AC.any_deps_match(_data_changed())
    if ignore:
        deps_changed = deps_changed.ignore(dg.AssetSelection.assets(*ignore))
    trigger = AC.newly_missing() | deps_changed.with_label("any_deps_data_changed") | AC.code_version_changed()
    return _ready(trigger, "on_new_data")


def once_absorbed_by(incremental: dg.AssetKey) -> dg.AutomationCondition:
    """For a per-drop asset that needs a global incremental asset to have absorbed its drop first:
    a missing partition waits for that asset's next new data, instead of running as soon as its
    drop is ingested."""
    absorbed = AC.any_deps_match(_data_changed()).allow(dg.AssetSelection.assets(incremental))
    trigger = (AC.missing() & absorbed.with_label(f"{incremental.to_user_string()}_data_changed")) | (
        AC.code_version_changed()
    )
    return _ready(trigger, f"once_absorbed_by_{incremental.to_user_string()}")
