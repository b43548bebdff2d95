//! GPIO backends for the lock relay and the door inputs: `rpi-pal` (Raspberry Pi registers, the
//! maintained continuation of rppal) and `gpiocdev` (the Linux GPIO character device, any board).
//!
//! The relay is **energised** or not; the lock type decides what that means. A fail-secure lock
//! (electric strike) is released while energised; a fail-safe lock (maglock) is secured while
//! energised. Lines start de-energised, which is also what the wiring's pull resistor holds while
//! the Pi boots or after the process dies, and every lock is driven de-energised when dropped.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{DoorInput, DoorInputs, HwError, HwErrorKind, Lock, SourceFuture};
use crate::core::doorstate::LockType;
use crate::door::config::{GpioBackend, GpioLine, InputsConfig, Level, LockHardware, Pull};

fn hw_err(device: &str, message: String) -> HwError {
    HwError {
        device: device.to_string(),
        kind: HwErrorKind::Other,
        message,
    }
}

/// Opens the configured GPIO relay. `None` for the simulated lock.
pub fn open_lock(hw: &LockHardware, lock_type: LockType) -> Option<Result<Box<dyn Lock>, HwError>> {
    match hw {
        LockHardware::Sim => None,
        LockHardware::RpiPal(line) => Some(
            RpiPalRelay::open(*line)
                .map(|r| Box::new(Relay { out: r, lock_type }) as Box<dyn Lock>),
        ),
        LockHardware::Gpiocdev { chip, line } => Some(
            CdevRelay::open(chip, *line)
                .map(|r| Box::new(Relay { out: r, lock_type }) as Box<dyn Lock>),
        ),
    }
}

/// Something that can energise a relay coil.
trait RelayLine: Send {
    fn set_energised(&mut self, on: bool) -> Result<(), HwError>;
}

/// A relay driven for a lock type.
struct Relay<L: RelayLine> {
    out: L,
    lock_type: LockType,
}

impl<L: RelayLine> Lock for Relay<L> {
    fn release(&mut self) -> Result<(), HwError> {
        self.out
            .set_energised(self.lock_type == LockType::FailSecure)
    }

    fn secure(&mut self) -> Result<(), HwError> {
        self.out.set_energised(self.lock_type == LockType::FailSafe)
    }
}

impl<L: RelayLine> Drop for Relay<L> {
    fn drop(&mut self) {
        // What the wiring holds without us: fail-secure locked, fail-safe released (by choice).
        let _ = self.out.set_energised(false);
    }
}

struct RpiPalRelay {
    pin: rpi_pal::gpio::OutputPin,
    active: Level,
}

impl RpiPalRelay {
    fn open(line: GpioLine) -> Result<Self, HwError> {
        let gpio = rpi_pal::gpio::Gpio::new().map_err(|e| {
            hw_err("lock", format!("cannot open the Raspberry Pi GPIO (rpi-pal): {e} (is this a Raspberry Pi, and may pintud use /dev/gpiomem, or /dev/gpiomem0 on a Pi 5?)"))
        })?;
        let pin = gpio
            .get(line.pin)
            .map_err(|e| hw_err("lock", format!("GPIO {}: {e}", line.pin)))?;
        let mut pin = match line.active {
            Level::High => pin.into_output_low(),
            Level::Low => pin.into_output_high(),
        };
        // On drop rpi-pal would return the pin to input (floating): keep driving de-energised.
        pin.set_reset_on_drop(false);
        Ok(RpiPalRelay {
            pin,
            active: line.active,
        })
    }
}

impl RelayLine for RpiPalRelay {
    fn set_energised(&mut self, on: bool) -> Result<(), HwError> {
        if on == (self.active == Level::High) {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

struct CdevRelay {
    req: gpiocdev::Request,
}

/// Guards against driving the wrong line when a chip path points at another chip (a Pi 5 on an
/// older kernel numbers its chips differently): a line named `GPIOn` must be line `n`.
fn check_line(device: &str, chip: &Path, pin: u8) -> Result<(), HwError> {
    let chip_dev = gpiocdev::chip::Chip::from_path(chip).map_err(|e| {
        hw_err(
            device,
            format!("cannot request GPIO {pin} on {}: {e}", chip.display()),
        )
    })?;
    let label = chip_dev.info().map(|i| i.label).unwrap_or_default();
    let name = chip_dev
        .line_info(u32::from(pin))
        .map(|i| i.name)
        .unwrap_or_default();
    let expected = format!("GPIO{pin}");
    if name.starts_with("GPIO") && name != expected {
        return Err(hw_err(
            device,
            format!("line {pin} of {} ({label}) is named {name}, not {expected}: wrong chip? (check with gpioinfo)", chip.display()),
        ));
    }
    if name != expected {
        tracing::warn!(device, chip = %chip.display(), label, line = pin, name, "line is not named {expected}: check it is the header pin you wired");
    }
    Ok(())
}

impl CdevRelay {
    fn open(chip: &Path, line: GpioLine) -> Result<Self, HwError> {
        check_line("lock", chip, line.pin)?;
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(chip)
            .with_consumer("pintud lock")
            .with_line(u32::from(line.pin));
        if line.active == Level::Low {
            builder.as_active_low();
        }
        builder.as_output(gpiocdev::line::Value::Inactive);
        let req = builder.request().map_err(|e| {
            hw_err(
                "lock",
                format!(
                    "cannot request GPIO {} on {}: {e}",
                    line.pin,
                    chip.display()
                ),
            )
        })?;
        Ok(CdevRelay { req })
    }
}

impl RelayLine for CdevRelay {
    fn set_energised(&mut self, on: bool) -> Result<(), HwError> {
        let value = if on {
            gpiocdev::line::Value::Active
        } else {
            gpiocdev::line::Value::Inactive
        };
        self.req
            .set_lone_value(value)
            .map_err(|e| hw_err("lock", format!("cannot drive the relay: {e}")))
    }
}

/// The door contact and exit button on GPIO. `None` when the inputs are simulated.
pub fn inputs(cfg: &InputsConfig) -> Option<Box<dyn DoorInputs>> {
    match cfg.backend {
        GpioBackend::Sim => None,
        _ => Some(Box::new(GpioInputs { cfg: cfg.clone() })),
    }
}

/// Door inputs read from GPIO edges (debounced).
pub struct GpioInputs {
    cfg: InputsConfig,
}

/// Turns a line's new level into door inputs.
fn input_for(cfg: &InputsConfig, pin: u8, active: bool) -> Option<DoorInput> {
    if cfg.contact.is_some_and(|l| l.pin == pin) {
        return Some(if active {
            DoorInput::DoorOpened
        } else {
            DoorInput::DoorClosed
        });
    }
    if cfg.exit.is_some_and(|l| l.pin == pin) && active {
        return Some(DoorInput::ExitButton);
    }
    None
}

impl DoorInputs for GpioInputs {
    fn run(
        self: Box<Self>,
        inputs: mpsc::Sender<DoorInput>,
        shutdown: CancellationToken,
    ) -> SourceFuture {
        Box::pin(async move {
            let cfg = self.cfg;
            let stop = shutdown.clone();
            let task = tokio::task::spawn_blocking(move || match cfg.backend {
                GpioBackend::RpiPal => run_rpi_pal(&cfg, &inputs, &stop),
                _ => run_cdev(&cfg, &inputs, &stop),
            });
            task.await
                .map_err(|e| hw_err("inputs", format!("input task failed: {e}")))?
        })
    }
}

fn run_rpi_pal(
    cfg: &InputsConfig,
    tx: &mpsc::Sender<DoorInput>,
    stop: &CancellationToken,
) -> Result<(), HwError> {
    use rpi_pal::gpio::{Bias, Gpio, Level as PinLevel, Trigger};
    let gpio = Gpio::new().map_err(|e| {
        hw_err(
            "inputs",
            format!("cannot open the Raspberry Pi GPIO (rpi-pal): {e}"),
        )
    })?;
    let mut pins = Vec::new();
    for line in [cfg.contact, cfg.exit].into_iter().flatten() {
        let mut pin = gpio
            .get(line.pin)
            .map_err(|e| hw_err("inputs", format!("GPIO {}: {e}", line.pin)))?
            .into_input();
        pin.set_bias(match cfg.pull {
            Pull::Up => Bias::PullUp,
            Pull::Down => Bias::PullDown,
            Pull::None => Bias::Off,
        });
        let active_high = line.active == Level::High;
        let is_active = move |level: PinLevel| (level == PinLevel::High) == active_high;
        if let Some(input) =
            input_for(cfg, line.pin, is_active(pin.read())).filter(|i| *i == DoorInput::DoorOpened)
        {
            let _ = tx.blocking_send(input); // the door is open at start: say so
        }
        let (tx, cfg2, pin_no) = (tx.clone(), cfg.clone(), line.pin);
        pin.set_async_interrupt(Trigger::Both, Some(cfg.debounce), move |event| {
            let level = if event.trigger == Trigger::RisingEdge {
                PinLevel::High
            } else {
                PinLevel::Low
            };
            if let Some(input) = input_for(&cfg2, pin_no, is_active(level)) {
                let _ = tx.blocking_send(input);
            }
        })
        .map_err(|e| {
            hw_err(
                "inputs",
                format!("GPIO {}: cannot watch edges: {e}", line.pin),
            )
        })?;
        pins.push(pin);
    }
    while !stop.is_cancelled() {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(pins);
    Ok(())
}

fn run_cdev(
    cfg: &InputsConfig,
    tx: &mpsc::Sender<DoorInput>,
    stop: &CancellationToken,
) -> Result<(), HwError> {
    use gpiocdev::line::{Bias, EdgeDetection, EdgeKind, Value};
    let mut builder = gpiocdev::Request::builder();
    builder.on_chip(&cfg.chip).with_consumer("pintud inputs");
    let lines: Vec<GpioLine> = [cfg.contact, cfg.exit].into_iter().flatten().collect();
    for line in &lines {
        check_line("inputs", &cfg.chip, line.pin)?;
    }
    for line in &lines {
        builder.with_line(u32::from(line.pin)).as_input();
        if line.active == Level::Low {
            builder.as_active_low();
        }
        builder
            .with_bias(match cfg.pull {
                Pull::Up => Bias::PullUp,
                Pull::Down => Bias::PullDown,
                Pull::None => Bias::Disabled,
            })
            .with_edge_detection(EdgeDetection::BothEdges)
            .with_debounce_period(cfg.debounce);
    }
    let req = builder.request().map_err(|e| {
        hw_err(
            "inputs",
            format!(
                "cannot request the input lines on {}: {e}",
                cfg.chip.display()
            ),
        )
    })?;
    for line in &lines {
        let value = req
            .value(u32::from(line.pin))
            .map_err(|e| hw_err("inputs", format!("GPIO {}: {e}", line.pin)))?;
        if let Some(input) =
            input_for(cfg, line.pin, value == Value::Active).filter(|i| *i == DoorInput::DoorOpened)
        {
            let _ = tx.blocking_send(input);
        }
    }
    while !stop.is_cancelled() {
        let ready = req
            .wait_edge_event(Duration::from_millis(500))
            .map_err(|e| hw_err("inputs", format!("waiting for input edges: {e}")))?;
        if !ready {
            continue;
        }
        let event = req
            .read_edge_event()
            .map_err(|e| hw_err("inputs", format!("reading an input edge: {e}")))?;
        let pin = u8::try_from(event.offset).unwrap_or(u8::MAX);
        if let Some(input) = input_for(cfg, pin, event.kind == EdgeKind::Rising) {
            if tx.blocking_send(input).is_err() {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A recording relay line.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<bool>>>);

    impl RelayLine for Recorded {
        fn set_energised(&mut self, on: bool) -> Result<(), HwError> {
            self.0.lock().unwrap().push(on);
            Ok(())
        }
    }

    #[test]
    fn fail_secure_energises_to_release_and_drops_de_energised() {
        let rec = Recorded::default();
        let mut lock = Relay {
            out: rec.clone(),
            lock_type: LockType::FailSecure,
        };
        lock.release().unwrap();
        lock.secure().unwrap();
        drop(lock);
        assert_eq!(*rec.0.lock().unwrap(), vec![true, false, false]);
    }

    #[test]
    fn fail_safe_energises_to_secure_and_drops_de_energised() {
        let rec = Recorded::default();
        let mut lock = Relay {
            out: rec.clone(),
            lock_type: LockType::FailSafe,
        };
        lock.secure().unwrap();
        lock.release().unwrap();
        drop(lock);
        assert_eq!(*rec.0.lock().unwrap(), vec![true, false, false]);
    }

    #[test]
    fn edges_map_to_door_inputs() {
        let cfg = InputsConfig {
            backend: GpioBackend::Gpiocdev,
            chip: "/dev/gpiochip0".into(),
            contact: Some(GpioLine {
                pin: 27,
                active: Level::High,
            }),
            exit: Some(GpioLine {
                pin: 22,
                active: Level::Low,
            }),
            pull: Pull::Up,
            debounce: Duration::from_millis(30),
        };
        assert_eq!(input_for(&cfg, 27, true), Some(DoorInput::DoorOpened));
        assert_eq!(input_for(&cfg, 27, false), Some(DoorInput::DoorClosed));
        assert_eq!(input_for(&cfg, 22, true), Some(DoorInput::ExitButton));
        assert_eq!(
            input_for(&cfg, 22, false),
            None,
            "releasing the button is not a request"
        );
        assert_eq!(input_for(&cfg, 5, true), None);
    }

    #[test]
    fn without_gpio_hardware_both_backends_fail_with_a_clear_error() {
        let line = GpioLine {
            pin: 17,
            active: Level::High,
        };
        // Never touch real pins from a test: skip where any Pi GPIO device exists.
        if !Path::new("/dev/gpiomem").exists() && !Path::new("/dev/gpiomem0").exists() {
            let e = open_lock(&LockHardware::RpiPal(line), LockType::FailSecure)
                .unwrap()
                .err()
                .unwrap();
            assert!(
                e.to_string().contains("cannot open the Raspberry Pi GPIO"),
                "{e}"
            );
        }
        if !Path::new("/dev/gpiochip0").exists() {
            let hw = LockHardware::Gpiocdev {
                chip: "/dev/gpiochip0".into(),
                line,
            };
            let e = open_lock(&hw, LockType::FailSecure).unwrap().err().unwrap();
            assert!(
                e.to_string()
                    .contains("cannot request GPIO 17 on /dev/gpiochip0"),
                "{e}"
            );
        }
    }
}
