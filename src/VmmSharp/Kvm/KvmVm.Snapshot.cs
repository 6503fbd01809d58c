using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <content>The VM-wide state ioctls a snapshot needs: irqchips, PIT, kvmclock, dirty log.</content>
public sealed unsafe partial class KvmVm
{
    /// <summary>Reads in-kernel interrupt controller <paramref name="chipId"/> (<c>KVM_GET_IRQCHIP</c>; see <see cref="KvmIrqchip"/>).</summary>
    public void GetIrqchip(uint chipId, out KvmIrqchip chip)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chipId, KvmIrqchip.IoApic);
        chip = default;
        chip.ChipId = chipId;
        fixed (KvmIrqchip* p = &chip)
        {
            Check(Libc.Ioctl(_fd, KvmIoctl.GetIrqchip, p), KvmIoctl.GetIrqchip, $"chip_id={chipId}");
        }
    }

    /// <summary>Writes an in-kernel interrupt controller's state (<c>KVM_SET_IRQCHIP</c>), the one <see cref="KvmIrqchip.ChipId"/> names.</summary>
    public void SetIrqchip(in KvmIrqchip chip)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(chip.ChipId, KvmIrqchip.IoApic);
        fixed (KvmIrqchip* p = &chip)
        {
            Check(Libc.Ioctl(_fd, KvmIoctl.SetIrqchip, p), KvmIoctl.SetIrqchip, $"chip_id={chip.ChipId}");
        }
    }

    /// <summary>Reads the in-kernel PIT (<c>KVM_GET_PIT2</c>).</summary>
    public void GetPit(out KvmPitState2 pit)
    {
        fixed (KvmPitState2* p = &pit)
        {
            Check(Libc.Ioctl(_fd, KvmIoctl.GetPit2, p), KvmIoctl.GetPit2, null);
        }
    }

    /// <summary>Writes the in-kernel PIT (<c>KVM_SET_PIT2</c>).</summary>
    public void SetPit(in KvmPitState2 pit)
    {
        fixed (KvmPitState2* p = &pit)
        {
            Check(Libc.Ioctl(_fd, KvmIoctl.SetPit2, p), KvmIoctl.SetPit2, null);
        }
    }

    /// <summary>Reads the VM's kvmclock (<c>KVM_GET_CLOCK</c>).</summary>
    public KvmClockData GetClock()
    {
        KvmClockData clock = default;
        Check(Libc.Ioctl(_fd, KvmIoctl.GetClock, &clock), KvmIoctl.GetClock, null);
        return clock;
    }

    /// <summary>Sets the VM's kvmclock (<c>KVM_SET_CLOCK</c>); only the clock value is used (flags cleared).</summary>
    public void SetClock(ulong nanoseconds)
    {
        var clock = new KvmClockData { Clock = nanoseconds };
        Check(Libc.Ioctl(_fd, KvmIoctl.SetClock, &clock), KvmIoctl.SetClock, $"clock={nanoseconds}");
    }

    /// <summary>
    /// Fetches and clears memory slot <paramref name="slot"/>'s dirty bitmap (<c>KVM_GET_DIRTY_LOG</c>): bit i of the
    /// bitmap is page i of the slot, set if the guest wrote it since the last call. The slot must have been created with
    /// <see cref="KvmMemorySlot.LogDirtyPages"/>; <paramref name="bitmap"/> holds one bit per page, rounded up to 64.
    /// </summary>
    public void GetDirtyLog(uint slot, Span<ulong> bitmap)
    {
        fixed (ulong* bits = bitmap)
        {
            var log = new KvmDirtyLog { Slot = slot, Bitmap = bits };
            Check(Libc.Ioctl(_fd, KvmIoctl.GetDirtyLog, &log), KvmIoctl.GetDirtyLog, $"slot={slot}");
        }
    }
}
