"""Label-free lidar failure detection (the second application): the two streams, their contradiction, the
student. Thresholds follow ../shared/reference/lidar_failure.md."""
