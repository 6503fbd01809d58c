using System.Runtime.InteropServices;

namespace VmmSharp.Devices.Virtio.Queues;

/// <summary><c>struct virtq_desc</c>: one entry of a descriptor table, as the guest wrote it.</summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct VirtqDescriptor
{
    public const ushort FlagNext = 1, FlagWrite = 2, FlagIndirect = 4;
    public const int Size = 16;

    public ulong Address;
    public uint Length;
    public ushort Flags;
    public ushort Next;
}
