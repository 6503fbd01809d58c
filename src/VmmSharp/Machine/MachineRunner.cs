namespace VmmSharp.Machine;

/// <summary>
/// Runs a guest on <see cref="PcMachine"/>s: boots one, and where the guest resets and
/// <see cref="MachineOptions.OnReset"/> says <see cref="ResetAction.Reboot"/>, boots it again on a fresh
/// machine (fresh memory, vCPUs, irqchip and devices), as a PC reboots.
/// </summary>
public static class MachineRunner
{
    /// <summary>Boots until the guest ends in some way other than a reset to reboot from.</summary>
    /// <param name="options">The machine; <see cref="MachineOptions.Deadline"/> applies to each boot.</param>
    /// <param name="onBoot">Called with each new machine before it runs (to attach devices, say); may be null.</param>
    /// <returns>
    /// The last boot's result; its reason counts the reboots before it. A reset after
    /// <see cref="MachineOptions.MaxReboots"/> reboots ends as <see cref="MachineOutcome.RebootLimitReached"/>.
    /// </returns>
    /// <exception cref="MachineConfigurationException"><see cref="MachineOptions.MaxReboots"/> is negative.</exception>
    public static MachineResult Run(MachineOptions options, Action<PcMachine>? onBoot = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxReboots < 0)
        {
            throw new MachineConfigurationException(nameof(MachineOptions.MaxReboots),
                $"reboot limit {options.MaxReboots} is negative: give 0 or more");
        }
        for (int reboots = 0; ; reboots++)
        {
            MachineResult result;
            bool rebootAsked;
            using (var machine = new PcMachine(options))
            {
                onBoot?.Invoke(machine);
                result = machine.Run();
                rebootAsked = result.Outcome == MachineOutcome.Reset && options.OnReset == ResetAction.Reboot;
                bool last = !rebootAsked || reboots == options.MaxReboots;
                if (last && options.HandOffTeardown && !machine.Vm.HandOffTeardown())
                {
                    options.Logger?.LogTeardownNotHandedOff();
                }
            }
            if (rebootAsked && reboots == options.MaxReboots)
            {
                return result with
                {
                    Outcome = MachineOutcome.RebootLimitReached,
                    ExitStatus = MachineResult.FailureStatus,
                    Reason = $"guest requested reset after {Reboots(reboots)}, the limit (MaxReboots {options.MaxReboots})",
                    Reboots = reboots,
                };
            }
            if (!rebootAsked)
            {
                return reboots == 0 ? result : result with { Reason = $"{result.Reason} (after {Reboots(reboots)})", Reboots = reboots };
            }
            options.Logger?.LogGuestRebooting(reboots + 1);
        }
    }

    private static string Reboots(int n) => n == 1 ? "1 reboot" : $"{n} reboots";
}
