"""Outputs of the appliance: lights, buzzer and button (GPIO), MQTT, case recorder."""
