"""The authoring surface: tasks, workflows, launch plans and their serialization."""
