using System.Runtime.InteropServices;
using VmmSharp.Interop;

namespace VmmSharp.Kvm;

/// <content>The state ioctls a snapshot needs beyond the exit path's: CPUID, LAPIC, XSAVE2, MSR lists, TSC, kvmclock.</content>
public sealed unsafe partial class KvmVcpu
{
    /// <summary>Reads the CPUID leaves the guest sees (<c>KVM_GET_CPUID2</c>).</summary>
    public KvmCpuidEntry[] GetCpuid()
    {
        for (int n = 64; ; n *= 2)
        {
            int bytes = 8 + (n * sizeof(KvmCpuidEntry));
            byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
            try
            {
                *(uint*)buffer = (uint)n;
                _stateTransfers++;
                if (Libc.Ioctl(_fd, KvmIoctl.GetCpuid2, buffer) == 0)
                {
                    return new Span<KvmCpuidEntry>(buffer + 8, (int)*(uint*)buffer).ToArray();
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno != E2BIG || n >= 4096)
                {
                    throw new KvmException(KvmIoctl.GetCpuid2, errno, $"vcpu {Id}, nent={n}");
                }
            }
            finally
            {
                NativeMemory.Free(buffer);
            }
        }
    }

    /// <summary>Reads the local APIC's registers (<c>KVM_GET_LAPIC</c>).</summary>
    public void GetLapic(out KvmLapicState lapic)
    {
        fixed (KvmLapicState* p = &lapic)
        {
            StateIoctl(KvmIoctl.GetLapic, p);
        }
    }

    /// <summary>Writes the local APIC's registers (<c>KVM_SET_LAPIC</c>).</summary>
    public void SetLapic(in KvmLapicState lapic)
    {
        fixed (KvmLapicState* p = &lapic)
        {
            StateIoctl(KvmIoctl.SetLapic, p);
        }
    }

    /// <summary>
    /// Reads the XSAVE state into <paramref name="xsave"/>, which is <c>KVM_CAP_XSAVE2</c>'s size where the host has it
    /// (<c>KVM_GET_XSAVE2</c>, components beyond 4 KiB included), else 4 KiB (<c>KVM_GET_XSAVE</c>).
    /// </summary>
    public void GetXsave(Span<byte> xsave)
    {
        if (xsave.Length < KvmXsave.Size)
        {
            throw new ArgumentException($"an XSAVE buffer holds at least {KvmXsave.Size} bytes, not {xsave.Length}", nameof(xsave));
        }
        fixed (byte* p = xsave)
        {
            StateIoctl(xsave.Length > KvmXsave.Size ? KvmIoctl.GetXsave2 : KvmIoctl.GetXsave, p);
        }
    }

    /// <summary>Writes the XSAVE state <see cref="GetXsave(Span{byte})"/> read (<c>KVM_SET_XSAVE</c>, which takes the XSAVE2 size).</summary>
    public void SetXsave(ReadOnlySpan<byte> xsave)
    {
        if (xsave.Length < KvmXsave.Size)
        {
            throw new ArgumentException($"an XSAVE buffer holds at least {KvmXsave.Size} bytes, not {xsave.Length}", nameof(xsave));
        }
        fixed (byte* p = xsave)
        {
            StateIoctl(KvmIoctl.SetXsave, p);
        }
    }

    /// <summary>
    /// Reads the MSRs named in <paramref name="indices"/> (<c>KVM_GET_MSRS</c>, any number) and returns how many KVM
    /// read: it stops at the first MSR it refuses, so fewer than asked means <c>indices[n]</c> cannot be read.
    /// </summary>
    public int ReadMsrs(ReadOnlySpan<uint> indices, Span<ulong> values) => MsrTransfer(KvmIoctl.GetMsrs, indices, values);

    /// <summary>Writes the MSRs named in <paramref name="indices"/> in order (<c>KVM_SET_MSRS</c>) and returns how many KVM took.</summary>
    public int WriteMsrs(ReadOnlySpan<uint> indices, ReadOnlySpan<ulong> values)
    {
        ulong[] copy = values.ToArray();
        return MsrTransfer(KvmIoctl.SetMsrs, indices, copy);
    }

    /// <summary>The vCPU's TSC frequency in kHz (<c>KVM_GET_TSC_KHZ</c>).</summary>
    public uint GetTscKhz()
    {
        int r = Libc.Ioctl(_fd, KvmIoctl.GetTscKhz, 0);
        Check(r, KvmIoctl.GetTscKhz, null);
        return (uint)r;
    }

    /// <summary>Sets the vCPU's TSC frequency in kHz (<c>KVM_SET_TSC_KHZ</c>; needs <c>KVM_CAP_TSC_CONTROL</c>).</summary>
    public void SetTscKhz(uint khz)
        => Check(Libc.Ioctl(_fd, KvmIoctl.SetTscKhz, (nuint)khz), KvmIoctl.SetTscKhz, $"vcpu {Id}, khz={khz}");

    /// <summary>
    /// Tells a guest using kvmclock that it was paused (<c>KVM_KVMCLOCK_CTRL</c>), so its soft-lockup watchdog does
    /// not fire. False where the guest has not enabled kvmclock (KVM answers EINVAL).
    /// </summary>
    public bool NotifyPaused() => Libc.Ioctl(_fd, KvmIoctl.KvmclockCtrl, 0) == 0;

    private const int E2BIG = 7;

    private int MsrTransfer(uint request, ReadOnlySpan<uint> indices, Span<ulong> values)
    {
        if (values.Length < indices.Length)
        {
            throw new ArgumentException($"room for {indices.Length} MSR values is needed, not {values.Length}", nameof(values));
        }
        int bytes = 8 + (indices.Length * sizeof(KvmMsrEntry));
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
        try
        {
            *(uint*)buffer = (uint)indices.Length;
            var entries = new Span<KvmMsrEntry>(buffer + 8, indices.Length);
            for (int i = 0; i < indices.Length; i++)
            {
                entries[i].Index = indices[i];
                entries[i].Data = values[i];
            }
            _stateTransfers++;
            int n = Libc.Ioctl(_fd, request, buffer);
            Check(n, request, $"vcpu {Id}, nmsrs={indices.Length}");
            for (int i = 0; i < n; i++)
            {
                values[i] = entries[i].Data;
            }
            return n;
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }
}
