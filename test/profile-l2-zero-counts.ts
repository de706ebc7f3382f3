// Zero counters of the HBM model (runtime/profile/l2-reuse-hbm.ts), for the profile tests to override.
export const NO_SECTORS = {
  unique_global_sectors: 0,
  block_sectors_private: 0,
  block_sectors_shared_x: 0,
  block_sectors_shared_y: 0,
  block_sectors_shared_xy: 0,
  block_sectors_shared_z: 0,
  block_sectors_shared_xz: 0,
  block_sectors_shared_yz: 0,
  block_sectors_shared_xyz: 0,
  block_sectors_halo_x: 0,
};
