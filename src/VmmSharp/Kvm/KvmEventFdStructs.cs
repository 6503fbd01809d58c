using System.Runtime.InteropServices;

namespace VmmSharp.Kvm;

/// <summary><c>struct kvm_ioeventfd</c>.</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct KvmIoEventFd
{
    public const uint FlagDatamatch = 1, FlagPio = 2, FlagDeassign = 4;

    public ulong Datamatch;
    public ulong Address;
    public uint Length;
    public int Fd;
    public uint Flags;
}

/// <summary><c>struct kvm_irqfd</c>.</summary>
[StructLayout(LayoutKind.Sequential, Size = 32)]
internal struct KvmIrqFd
{
    public const uint FlagDeassign = 1;

    public uint Fd;
    public uint Gsi;
    public uint Flags;
    public uint ResampleFd;
}
