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
    /// <returns>The last boot's result; its reason counts the reboots before it.</returns>
    public static MachineResult Run(MachineOptions options, Action<PcMachine>? onBoot = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        for (int reboots = 0; ; reboots++)
        {
            MachineResult result;
            bool reboot;
            using (var machine = new PcMachine(options))
            {
                onBoot?.Invoke(machine);
                result = machine.Run();
                reboot = result.Outcome == MachineOutcome.Reset && options.OnReset == ResetAction.Reboot && reboots < options.MaxReboots;
                if (!reboot && options.HandOffTeardown && !machine.Vm.HandOffTeardown())
                {
                    options.Logger?.LogTeardownNotHandedOff();
                }
            }
            if (!reboot)
            {
                return reboots == 0 ? result : result with { Reason = $"{result.Reason} (after {reboots} reboot{(reboots == 1 ? "" : "s")})" };
            }
            options.Logger?.LogGuestRebooting(reboots + 1);
        }
    }
}
